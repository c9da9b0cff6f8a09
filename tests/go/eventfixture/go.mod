module example.com/eventfixture

go 1.22
