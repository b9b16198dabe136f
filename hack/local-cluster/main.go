// Command local-cluster starts only the local Kubernetes cluster of the
// end-to-end tests and the demo (`make local-cluster`): etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler built from
// source, and kwok playing three fake nodes. It prints the KUBECONFIG to use
// and stops everything on Ctrl-C, leaving no process or file behind.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/mlflow-operator/mlflow-operator/test/harness/cluster"
)

func main() {
	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapcore.ErrorLevel)))
	start := time.Now()
	fmt.Println("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok ...")
	c, err := cluster.Start(context.Background(), cluster.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "local-cluster:", err)
		os.Exit(1)
	}
	fmt.Printf(`up in %s, with 3 kwok nodes; pods get IPs in 127.1.0.0/16.

    export KUBECONFIG=%s
    kubectl get nodes

Chaos: the pod label %s: "true" fails a pod's containers;
%s: "<v>" fails the production pods of model version <v>.
Ctrl-C stops the cluster and removes its files.
`, time.Since(start).Round(100*time.Millisecond), c.Kubeconfig, cluster.ChaosLabel, cluster.CrashVersionLabel)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	fmt.Println("stopping")
	c.Stop()
}
