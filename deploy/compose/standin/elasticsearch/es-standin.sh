#!/bin/bash
# Starts the stand-in Elasticsearch node in the foreground, configured the
# way the official image is: every environment variable whose name is a
# dotted setting (discovery.type, cluster.name, ...) becomes that setting,
# and ES_JAVA_OPTS is added after the JVM flags in jvm.options (so its -Xms
# and -Xmx win over the default heap of 512 MiB).
#
# The node has no X-Pack: a setting that turns an X-Pack feature off
# (xpack.security.enabled=false) is what it does anyway and is skipped;
# any other xpack.* setting is refused rather than ignored.
set -euo pipefail

home=/usr/share/elasticsearch
# The official image's defaults; the environment overrides them.
settings=(network.host=0.0.0.0 cluster.name=docker-cluster "node.name=$(hostname)")
while IFS= read -r -d '' var; do
	name=${var%%=*}
	value=${var#*=}
	[[ $name =~ ^[a-z0-9_]+(\.[a-z0-9_]+)+$ ]] || continue
	if [[ $name == xpack.* ]]; then
		if [[ $name == *.enabled && $value == false ]]; then
			echo "es-standin: $name=false: this node has no X-Pack, nothing to turn off" >&2
			continue
		fi
		echo "es-standin: $name=$value: this node has no X-Pack (it is a stand-in for the official image)" >&2
		exit 1
	fi
	settings+=("$name=$value")
done < <(env -0)

mapfile -t jvm < "$home/jvm.options"
read -r -a extra <<< "${ES_JAVA_OPTS:-}"
exec java -Xms512m -Xmx512m "${jvm[@]}" "${extra[@]}" \
	-cp "$home/lib/*" logpipe.esnode.Launcher "$home" "${settings[@]}"
