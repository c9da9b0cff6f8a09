module example.com/valuesfixture

go 1.22
