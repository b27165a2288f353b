module github.com/pathcost/pathcost

go 1.26.0

require (
	github.com/google/go-containerregistry v0.22.1 // indirect
	github.com/prometheus/procfs v0.23.0 // indirect
	github.com/stretchr/testify v1.12.1 // indirect
	golang.org/x/sys v0.50.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
	sigs.k8s.io/e2e-framework v0.7.0 // indirect
)
