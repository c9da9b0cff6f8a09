module example.com/parkfixture

go 1.22
