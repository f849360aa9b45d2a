package devstack

import (
	"slices"
	"strings"
)

// ElasticsearchJVMFlags returns the JVM flags StartElasticsearch runs a node
// with, for a node whose home is home, without the ones that size memory
// (-Xms, -Xmx, -XX:MaxDirectMemorySize): a container image of the same node
// (e2e/compose) takes those from ES_JAVA_OPTS, as the official image does.
func ElasticsearchJVMFlags(home string) []string {
	return slices.DeleteFunc(esJVMArgs(0, home), func(f string) bool {
		return strings.HasPrefix(f, "-Xms") || strings.HasPrefix(f, "-Xmx") || strings.HasPrefix(f, "-XX:MaxDirectMemorySize=")
	})
}
