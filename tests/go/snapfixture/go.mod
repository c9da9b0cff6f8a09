module example.com/snapfixture

go 1.22
