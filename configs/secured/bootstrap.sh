#!/bin/sh
# Sets up a running secured brokerd (configs/secured/brokerd.yml) for the
# pipeline, as the admin, with `brokerd ... --command-config`:
#
#   topic   the topic httpd, unless it exists
#   users   the SCRAM-SHA-512 users shipper and indexer (their passwords
#           are set again when they exist)
#   acls    the shipper may WRITE to httpd (IDEMPOTENT_WRITE on the cluster
#           for its idempotent producer); the indexer may READ httpd and
#           its group. Nothing else: DESCRIBE comes with WRITE and READ.
#
#   LOGPIPE_ADMIN_PASSWORD=... LOGPIPE_SHIPPER_PASSWORD=... LOGPIPE_INDEXER_PASSWORD=... \
#       sh configs/secured/bootstrap.sh [topic] [users] [acls]     (default: all three)
#
# Running it again changes nothing but the passwords.
#
# Environment:
#   LOGPIPE_ADMIN_PASSWORD     required (the PLAIN account of prepare.sh)
#   LOGPIPE_SHIPPER_PASSWORD, LOGPIPE_INDEXER_PASSWORD   required for users
#   BOOTSTRAP_SERVER           the brokers (default 127.0.0.1:9092)
#   LOGPIPE_SECURITY_DIR       the folder of ca.crt (default /etc/logpipe/security)
#   TOPIC, GROUP               default httpd and indexer
#   PARTITIONS, REPLICATION_FACTOR   of the topic (default: the brokers')
#   COMMAND_CONFIG             the admin's client properties file to use;
#                              unset, one is written for the run and removed
#   BROKERD                    the brokerd binary (default: brokerd on PATH)
set -eu

server=${BOOTSTRAP_SERVER:-127.0.0.1:9092}
dir=${LOGPIPE_SECURITY_DIR:-/etc/logpipe/security}
topic=${TOPIC:-httpd}
group=${GROUP:-indexer}
brokerd=${BROKERD:-brokerd}

fail() {
	echo "bootstrap.sh: $*" >&2
	exit 1
}

steps=${*:-topic users acls}
for s in $steps; do
	case $s in
	topic | users | acls) ;;
	*) fail "unknown step $s: want topic, users or acls" ;;
	esac
done

# The admin's properties, as Kafka's tools take them too (kafka-acls.sh
# --command-config FILE works with the same file).
config=${COMMAND_CONFIG:-}
if [ -z "$config" ]; then
	[ -n "${LOGPIPE_ADMIN_PASSWORD:-}" ] || fail "LOGPIPE_ADMIN_PASSWORD is not set"
	umask 077
	config=$(mktemp)
	trap 'rm -f "$config"' EXIT
	cat >"$config" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$LOGPIPE_ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=$dir/ca.crt
PROPERTIES
fi

admin() {
	"$brokerd" "$@" --bootstrap-server "$server" --command-config "$config" --timeout 60000
}

for s in $steps; do
	case $s in
	topic)
		set -- topics --create --if-not-exists --topic "$topic"
		[ -z "${PARTITIONS:-}" ] || set -- "$@" --partitions "$PARTITIONS"
		[ -z "${REPLICATION_FACTOR:-}" ] || set -- "$@" --replication-factor "$REPLICATION_FACTOR"
		admin "$@"
		;;
	users)
		for u in shipper indexer; do
			[ "$u" = shipper ] && pw=${LOGPIPE_SHIPPER_PASSWORD:-} || pw=${LOGPIPE_INDEXER_PASSWORD:-}
			[ -n "$pw" ] || fail "the password of $u is not set (LOGPIPE_SHIPPER_PASSWORD, LOGPIPE_INDEXER_PASSWORD)"
			admin users add --user "$u" --password "$pw" --mechanism SCRAM-SHA-512
		done
		;;
	acls)
		admin acls --add --allow-principal User:shipper --operation Write --topic "$topic"
		admin acls --add --allow-principal User:shipper --operation IdempotentWrite --cluster
		admin acls --add --allow-principal User:indexer --operation Read --topic "$topic" --group "$group"
		;;
	esac
done
echo "bootstrap.sh: done ($steps) on $server"
