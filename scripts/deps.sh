#!/usr/bin/env bash
# deps.sh — install what s3grantd needs to build, test and run on Debian 12.
# Used by the README and by .ci/run. Idempotent.
set -euo pipefail
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
pkgs=(
	build-essential cmake pkg-config clang
	libuv1-dev libcurl4-openssl-dev libssl-dev libyajl-dev libpq-dev
	libsystemd-dev libcmocka-dev libexpat1-dev libinih-dev zlib1g-dev
	postgresql-15 postgresql-client-15 systemd python3 openssl
	debhelper lintian dpkg-dev systemd-container debootstrap
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Node.js runs the S3 Control fake; any install that provides node and npm will do.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Python side of the tests: moto (STS/S3/KMS/IAM fake) and boto3/botocore
# (the S3 Control fake's independent signer, and the conformance client).
if ! python3 -c 'import moto, boto3, botocore, flask' 2>/dev/null; then
	if ! python3 -m pip install -q 'moto[server]' boto3 2>/dev/null; then
		$SUDO apt-get install -y -qq --no-install-recommends python3-boto3 python3-moto python3-flask
	fi
fi
