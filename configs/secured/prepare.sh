#!/bin/sh
# What the secured brokerd (configs/secured/brokerd.yml) needs before it
# starts: its certificate, and the file of its two PLAIN accounts.
#
#   LOGPIPE_ADMIN_PASSWORD=... LOGPIPE_BROKER_PASSWORD=... sh configs/secured/prepare.sh
#
# Certificates: where brokerd.crt and brokerd.key exist (yours), they are
# kept. Where they do not, a development CA (ca.key, ca.crt; made once and
# reused) signs a new brokerd.crt for BROKERD_HOSTS, with openssl. Use your
# own CA for anything but trying the stack out.
# plain-users.yml is written every time, from the passwords: the bcrypt
# hashes of the accounts admin and broker (`brokerd users plain-hash`).
#
# Environment:
#   LOGPIPE_ADMIN_PASSWORD, LOGPIPE_BROKER_PASSWORD   required; ASCII,
#                      without '"', '\' or spaces
#   LOGPIPE_SECURITY_DIR   the folder of every file (default /etc/logpipe/security)
#   CA_DIR             ca.key and ca.crt (default: LOGPIPE_SECURITY_DIR)
#   BROKERD_DIR        brokerd.crt, brokerd.key, ca.crt, plain-users.yml
#                      (default: LOGPIPE_SECURITY_DIR)
#   CLIENTS_DIR        ca.crt for the clients (default: LOGPIPE_SECURITY_DIR)
#   BROKERD_HOSTS      names and addresses brokerd.crt is made for, separated
#                      by spaces (default "localhost 127.0.0.1")
#   CERT_DAYS          validity of the certificates made (default 825)
#   OWNER              user:group given the files written (when run as root)
#   BROKERD            the brokerd binary (default: brokerd on PATH)
set -eu

dir=${LOGPIPE_SECURITY_DIR:-/etc/logpipe/security}
ca_dir=${CA_DIR:-$dir}
brokerd_dir=${BROKERD_DIR:-$dir}
clients_dir=${CLIENTS_DIR:-$dir}
hosts=${BROKERD_HOSTS:-localhost 127.0.0.1}
days=${CERT_DAYS:-825}
brokerd=${BROKERD:-brokerd}

fail() {
	echo "prepare.sh: $*" >&2
	exit 1
}

# A password goes into a JAAS line between double quotes: printable
# ASCII without '"', '\' or spaces.
check_password() {
	eval "value=\${$1:-}"
	[ -n "$value" ] || fail "$1 is not set"
	if [ "$(printf '%s' "$value" | wc -l)" -ne 0 ] || printf '%s' "$value" | LC_ALL=C grep -q '[^]!#-[^-~]'; then
		fail "$1 may hold printable ASCII only, without '\"', '\\' or spaces"
	fi
}
check_password LOGPIPE_ADMIN_PASSWORD
check_password LOGPIPE_BROKER_PASSWORD

umask 077
mkdir -p "$ca_dir" "$brokerd_dir" "$clients_dir"
written=""

if [ ! -f "$brokerd_dir/brokerd.crt" ] || [ ! -f "$brokerd_dir/brokerd.key" ]; then
	command -v openssl >/dev/null || fail "no brokerd.crt and brokerd.key in $brokerd_dir, and no openssl to make them"
	if [ ! -f "$ca_dir/ca.key" ]; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
			-subj "/CN=logpipe development CA" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
			-keyout "$ca_dir/ca.key" -out "$ca_dir/ca.crt" 2>/dev/null
		written="$written $ca_dir/ca.key $ca_dir/ca.crt"
		echo "prepare.sh: made a development CA in $ca_dir"
	fi
	san=""
	for h in $hosts; do
		case $h in
		*[!0-9.]*) san="$san,DNS:$h" ;;
		*) san="$san,IP:$h" ;;
		esac
	done
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n' "${san#,}" >"$work/ext"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=brokerd" \
		-keyout "$brokerd_dir/brokerd.key" -out "$work/brokerd.csr" 2>/dev/null
	openssl x509 -req -in "$work/brokerd.csr" -CA "$ca_dir/ca.crt" -CAkey "$ca_dir/ca.key" \
		-set_serial "0x$(openssl rand -hex 16)" -days "$days" -extfile "$work/ext" \
		-out "$brokerd_dir/brokerd.crt" 2>/dev/null
	written="$written $brokerd_dir/brokerd.key $brokerd_dir/brokerd.crt"
	echo "prepare.sh: made brokerd.crt for $hosts"
fi

# The CA certificate: brokerd's folder keeps the one it has (yours), else
# gets the development CA's; the clients' folder gets brokerd's, every
# time, so that it matches brokerd.crt.
if [ ! -f "$brokerd_dir/ca.crt" ]; then
	[ -f "$ca_dir/ca.crt" ] || fail "no ca.crt in $brokerd_dir or $ca_dir: put there the CA certificate that signed brokerd.crt"
	cp "$ca_dir/ca.crt" "$brokerd_dir/ca.crt"
	written="$written $brokerd_dir/ca.crt"
fi
if [ "$clients_dir" != "$brokerd_dir" ]; then
	cp "$brokerd_dir/ca.crt" "$clients_dir/ca.crt"
	written="$written $clients_dir/ca.crt"
fi

# The PLAIN accounts, replaced at once (brokerd reads the file again when
# it changes).
{
	"$brokerd" users plain-hash --user admin --password "$LOGPIPE_ADMIN_PASSWORD"
	"$brokerd" users plain-hash --user broker --password "$LOGPIPE_BROKER_PASSWORD"
} >"$brokerd_dir/plain-users.yml.new"
mv "$brokerd_dir/plain-users.yml.new" "$brokerd_dir/plain-users.yml"
written="$written $brokerd_dir/plain-users.yml"

for f in $written; do
	case $f in
	*.crt) chmod 644 "$f" ;;
	esac
	if [ -n "${OWNER:-}" ]; then
		chown "$OWNER" "$f"
	fi
done
if [ -n "${OWNER:-}" ]; then
	chown "$OWNER" "$brokerd_dir" "$clients_dir"
fi
chmod 755 "$clients_dir"
echo "prepare.sh: wrote $brokerd_dir/plain-users.yml (admin, broker)"
