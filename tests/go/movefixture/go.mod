module example.com/movefixture

go 1.22
