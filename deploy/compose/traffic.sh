#!/bin/bash
# The compose stack's traffic generator: requests pages of the httpd
# service one after another, forever, so that both of its logs grow. About
# one request in five fails: a page that does not exist (404) or the denied
# folder (403); both leave a line in error_log.
#
# TRAFFIC_URL       the site (default http://httpd)
# TRAFFIC_INTERVAL  seconds between requests (default 1; fractions work)
#
# After every answered request it touches /tmp/traffic-ok; the health check
# looks at its age.
set -u
url=${TRAFFIC_URL:-http://httpd}
interval=${TRAFFIC_INTERVAL:-1}
pages=(/ /index.html /about.html /products.html /about.html /products.html /index.html /)
trap 'exit 0' TERM INT

n=0
while :; do
	n=$((n + 1))
	case $((RANDOM % 10)) in
	0) path="/missing-$n.html" ;;
	1) path=/private/ ;;
	*) path=${pages[RANDOM % ${#pages[@]}]} ;;
	esac
	code=$(curl -s -o /dev/null -w '%{http_code}' -A 'logpipe-traffic/1' "$url$path")
	if [[ $code != 000 ]]; then
		touch /tmp/traffic-ok
	else
		echo "traffic: $url$path: no answer" >&2
	fi
	sleep "$interval"
done
