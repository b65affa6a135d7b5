// Command coredns runs CoreDNS with the plugins of kubeadm's default Corefile, in
// upstream's plugin order.
//
// The order in which plugins run is dnsserver.Directives, which upstream generates
// from its plugin.cfg (core/dnsserver/zdirectives.go); this build keeps it as it is, so
// it runs its plugins in exactly the order of the registry.k8s.io/coredns image of the
// same version (template before kubernetes, for instance). Importing fewer plugins
// only leaves directives without a plugin, which a Corefile that does not name them
// never reaches. tests/ci_paths.rs checks that nothing here reorders them.
package main

import (
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/template"
)

func main() {
	coremain.Run()
}
