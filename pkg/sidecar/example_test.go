package sidecar_test

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/pathcost/pathcost/pkg/provider"
	"github.com/pathcost/pathcost/pkg/sidecar"
)

// A Kubernetes provider on a cluster without Istio: build the images once, load them into the
// nodes, create the run's Secret and ConfigMap, inject each pod's side before creating it, and
// describe the proxies for the Path.
func ExampleEmulated() {
	ctx := context.Background()
	imgs, err := sidecar.BuildImages(ctx, "/tmp/images") // then load imgs.HAProxyArchive, imgs.InitArchive
	if err != nil {
		fmt.Println(err)
		return
	}
	e := &sidecar.Emulated{HAProxyImage: imgs.HAProxyRef, InitImage: imgs.InitRef, ServerPort: 50012, Proxy: imgs.Proxy}
	secret, _ := e.Secret("bench")    // create it in namespace bench
	config, _ := e.ConfigMap("bench") // and this
	server := corev1.PodSpec{Containers: []corev1.Container{{Name: "tcpload", Image: "pathcost/tcpload:dev"}}}
	if err := e.Inject(&server, provider.ServerSide); err != nil {
		fmt.Println(err)
		return
	}
	sc := e.Sidecar(provider.ServerSide, nil) // Host: the server pod's Host
	fmt.Println(secret.Name, config.Name, server.InitContainers[0].Name, server.InitContainers[1].Name, sc.Watch)
}
