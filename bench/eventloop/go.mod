module example.com/eventloop

go 1.22
