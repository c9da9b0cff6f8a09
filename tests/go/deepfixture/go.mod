module example.com/deepfixture

go 1.22
