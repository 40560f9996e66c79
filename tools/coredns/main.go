// Command coredns is CoreDNS v1.15 with only the plugins a cluster's DNS needs, so the
// real node's cluster DNS builds from Go modules in a fraction of the full build's time.
// The plugin order below is CoreDNS's own (plugin.cfg); a plugin runs in this order
// whatever order the Corefile names it in.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

func init() {
	dnsserver.Directives = []string{
		"ready",
		"health",
		"errors",
		"log",
		"cache",
		"loadbalance",
		"kubernetes",
	}
}

func main() {
	coremain.Run()
}
