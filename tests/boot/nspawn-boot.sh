#!/usr/bin/env bash
# nspawn-boot.sh — end-to-end test of the packaged service under real systemd.
#
# Builds the .deb, installs it into a Debian 12 tree (debootstrap, cached in
# $S3G_NSPAWN_CACHE), boots that tree with systemd-nspawn sharing the host's
# loopback, and lets a oneshot unit inside drive s3grantd: start (Type=notify,
# READY=1 after Postgres), reconcile 12,000 grants against the S3 Control fake
# on the host, `systemctl reload` (SIGHUP), read the journal, stop. The host
# then checks what systemd and journald saw: one journal entry per grant
# created, and no secret (config or integration key).
#
#   tests/boot/nspawn-boot.sh [DEB]      exit 0 = pass
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
cache=${S3G_NSPAWN_CACHE:-/var/cache/s3g}
pkgs=systemd,systemd-sysv,dbus,libuv1,libcurl4,libpq5,libyajl2,libexpat1,libinih1,libssl3,libsystemd0,zlib1g
key=$(printf '%s' "$pkgs" | sha256sum | cut -c1-12)
base="$cache/rootfs-$key"

log() { printf 'nspawn-boot: %s\n' "$*"; }

command -v systemd-nspawn >/dev/null || { log "systemd-nspawn missing (apt-get install systemd-container)"; exit 1; }
command -v debootstrap >/dev/null || { log "debootstrap missing"; exit 1; }

work=$(mktemp -d /tmp/s3g-boot-XXXXXX)
chmod 755 "$work"
pgdir="$work/pg"
fakepid=
cleanup() {
	[ -z "$fakepid" ] || kill "$fakepid" 2>/dev/null || true
	"$src/scripts/pg-tmp" stop "$pgdir" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

deb=${1:-}
if [ -z "$deb" ]; then
	"$src/packaging/build-deb.sh" "$work/deb" >/dev/null
	deb=$(ls "$work"/deb/s3grantd_*.deb | head -n1)
fi

if [ ! -x "$base/usr/bin/systemctl" ]; then
	log "debootstrap into $base (once per machine)"
	mkdir -p "$cache"
	rm -rf "$base.tmp"
	debootstrap --variant=minbase --include="$pkgs" bookworm "$base.tmp" >"$work/debootstrap.log" 2>&1 ||
		{ tail -30 "$work/debootstrap.log"; exit 1; }
	mv "$base.tmp" "$base"
fi

root="$work/root"
cp -a "$base" "$root"
cp "$deb" "$root/var/tmp/s3grantd.deb"
systemd-nspawn -q --keep-unit --register=no -D "$root" --pipe dpkg -i /var/tmp/s3grantd.deb >"$work/dpkg.log" 2>&1 ||
	{ cat "$work/dpkg.log"; exit 1; }

# Postgres on the host's loopback (the container shares it).
"$src/scripts/pg-tmp" start "$pgdir" tcp
# shellcheck disable=SC1091
. "$pgdir/env"
pgport=$PGPORT
export PGUSER=postgres PGDATABASE=postgres
head -c 32 /dev/urandom >"$root/etc/s3grantd/secrets.key"
chmod 0400 "$root/etc/s3grantd/secrets.key"

# The S3 Control fake on the host's loopback, and an integration of 12,000
# subscriptions (120 users x 100 data sources) written with the package's own
# s3grantctl, reconciled at up to 10,000 requests/s: more "grant created"
# entries in a few seconds than journald's nominal burst (10,000 per 30 s per
# unit, which journald scales up with free disk space).
fake_secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
ngrants=12000
fakedir="$src/tests/fakes/s3control"
[ -d "$fakedir/node_modules/@smithy/signature-v4" ] ||
	(cd "$fakedir" && npm ci --no-audit --no-fund --loglevel=error)
node "$fakedir/server.js" --port 0 --port-file "$work/fake.port" --credential "AKIDEXAMPLE:$fake_secret" \
	>"$work/fake.log" 2>&1 &
fakepid=$!
for _ in $(seq 300); do [ -s "$work/fake.port" ] && break; sleep 0.1; done
[ -s "$work/fake.port" ] || { log "the fake did not start"; cat "$work/fake.log"; exit 1; }
fake="http://127.0.0.1:$(cat "$work/fake.port")"
curl -fsS -X POST -H 'Content-Type: application/json' -d '{"instances": [{}]}' "$fake/__fake/state" >/dev/null
dpkg-deb -x "$deb" "$work/debx"
ctl=$(find "$work/debx" -type f -name s3grantctl | head -n1)
export S3GRANT_SECRETS_KEY_FILE="$root/etc/s3grantd/secrets.key"
"$ctl" db migrate >/dev/null
"$ctl" integrations create -f - >/dev/null <<JSON
{"type": "Native S3",
 "config": {"name": "boot", "awsAccountId": "111122223333", "awsRegion": "us-east-1",
            "awsLocationRole": "arn:aws:iam::111122223333:role/s3grantd-location", "awsLocationPath": "s3://",
            "authenticationType": "accessKey", "awsAccessKeyId": "AKIDEXAMPLE", "awsSecretAccessKey": "$fake_secret"}}
JSON
psql -X -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO s3grant.users (username) SELECT 'user' || i FROM generate_series(1, 120) i;
INSERT INTO s3grant.data_sources (integration_id, prefix)
	SELECT (SELECT id FROM s3grant.integrations WHERE name = 'boot'), 'bucket-boot/p' || i
	FROM generate_series(1, $ngrants / 120) i;
INSERT INTO s3grant.subscriptions (user_id, data_source_id, access)
	SELECT u.id, d.id, 'read' FROM s3grant.users u CROSS JOIN s3grant.data_sources d;
SQL
cat >"$root/etc/s3g-boot-test.env" <<ENV
PGHOST=127.0.0.1 PGPORT=$pgport PGUSER=postgres PGDATABASE=postgres
NGRANTS=$ngrants
export PGHOST PGPORT PGUSER PGDATABASE NGRANTS
ENV

# Sensitive values that must never reach the journal.
secret_pw="SENSITIVE-pw-$RANDOM$RANDOM"
secret_key="SENSITIVE-sk-$RANDOM$RANDOM"
cat >"$root/etc/s3grantd/s3grantd.conf" <<CONF
[database]
conninfo = host=127.0.0.1 port=$pgport user=postgres dbname=postgres password=$secret_pw

[daemon]
log_level = debug

[aws]
region = us-east-1
access_key_id = AKIDEXAMPLE
secret_access_key = $secret_key
endpoint_url_s3_control = $fake

[reconcile]
rate_limit = 10000
CONF

mkdir -p "$root/out"
cat >"$root/usr/local/bin/s3g-boot-test" <<'SH'
#!/bin/sh
# Runs inside the container once the system is up.
out=/out
wait_for() {  # wait_for SECONDS CMD...: poll a systemd state, bounded
	n=$(( $1 * 10 )); shift
	while [ $n -gt 0 ]; do "$@" && return 0; n=$((n - 1)); sleep 0.1; done
	return 1
}
. /etc/s3g-boot-test.env
systemctl start s3grantd.service
echo "start=$?" >>$out/result
systemctl show s3grantd.service -p ActiveState -p SubState -p WatchdogUSec -p NRestarts -p StatusText >$out/show-started
wait_for 150 sh -c 's3grantctl status >$0/status.txt 2>&1 &&
	grep -q "desired $NGRANTS, actual $NGRANTS" $0/status.txt &&
	grep -q "0 queued changes, 0 create intents" $0/status.txt' $out
echo "reconciled=$?" >>$out/result
systemctl reload s3grantd.service
echo "reload=$?" >>$out/result
wait_for 20 sh -c 'journalctl -u s3grantd.service -o cat | grep -qi "reload"' ; echo "reloadlog=$?" >>$out/result
systemctl show s3grantd.service -p ActiveState -p SubState -p StatusText >$out/show-reloaded
systemctl stop s3grantd.service
echo "stop=$?" >>$out/result
systemctl show s3grantd.service -p ActiveState -p Result -p ExecMainStatus >$out/show-stopped
journalctl -u s3grantd.service -o export >$out/journal.export
journalctl -u s3grantd.service -o verbose >$out/journal.txt
echo done >>$out/result
systemctl poweroff
SH
chmod 755 "$root/usr/local/bin/s3g-boot-test"
cat >"$root/etc/systemd/system/s3g-boot-test.service" <<'UNIT'
[Unit]
Description=s3grantd boot test driver
After=multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/local/bin/s3g-boot-test
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
UNIT
ln -sf /etc/systemd/system/s3g-boot-test.service "$root/etc/systemd/system/multi-user.target.wants/s3g-boot-test.service"

log "booting"
timeout 300 systemd-nspawn -q --keep-unit --register=no -D "$root" -b --bind="$root/out:/out" >"$work/console.log" 2>&1 || true

fail=0
check() { if eval "$2"; then log "ok: $1"; else log "FAIL: $1"; fail=1; fi; }
cat "$root/out/result" 2>/dev/null || true
check "the driver ran to the end" "grep -q '^done' '$root/out/result'"
check "systemctl start succeeded (READY=1 received)" "grep -q '^start=0' '$root/out/result'"
check "service active (running) after start" "grep -q '^SubState=running' '$root/out/show-started'"
check "$ngrants grants reconciled against the fake (s3grantctl status)" "grep -q '^reconciled=0' '$root/out/result'"
check "watchdog armed" "grep -Eq '^WatchdogUSec=[1-9]' '$root/out/show-started'"
check "systemctl reload succeeded" "grep -q '^reload=0' '$root/out/result'"
check "still running after reload" "grep -q '^SubState=running' '$root/out/show-reloaded'"
check "stopped cleanly (exit 0)" "grep -q '^Result=success' '$root/out/show-stopped'"
# s3grantd's own entries (not systemd's about it): native, with MESSAGE_ID
# and the ready / reload events.
own="$work/own.export"
awk -v RS= '/\nSYSLOG_IDENTIFIER=s3grantd\n/' "$root/out/journal.export" >"$own" 2>/dev/null || true
check "s3grantd logs natively to the journal with MESSAGE_ID" "grep -q '^MESSAGE_ID=' '$own'"
check "the journal shows the reload" "grep -qi '^MESSAGE=.*reload' '$own'"
created=$(grep -c '^MESSAGE=grant created$' "$own" || true)
check "the journal holds all $ngrants \"grant created\" entries (has $created)" "[ '$created' = $ngrants ]"
check "no sensitive value in the journal (config or the integration's key)" \
	"! grep -aqF -e '$secret_pw' -e '$secret_key' -e '$fake_secret' '$root/out/journal.export'"
if [ $fail -ne 0 ]; then
	log "--- journal"; tail -50 "$root/out/journal.txt" 2>/dev/null || true
	log "--- console"; tail -40 "$work/console.log"
fi
exit $fail
