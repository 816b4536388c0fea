#!/usr/bin/env bash
# Usage: testbed/install.sh
# Installs (if missing) what the upstream test servers need: Dovecot (IMAP, POP3,
# LMTP), Postfix, openssl, python3, curl, fetchmail and msmtp. Idempotent; needs root + apt.
# Services are NOT started by the packages (policy-rc.d blocks it); the testbed
# runs its own instances via upstream-up.sh. Prints how long the install took.
set -euo pipefail
PKGS=(dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd postfix
      openssl python3 curl fetchmail msmtp isync time)
LOG=${TMPDIR:-/tmp}/testbed-apt.log

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

start=$(date +%s.%N)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "install.sh: missing ${missing[*]}; run as root (or install them) first" >&2; exit 1; }
  echo "install.sh: installing: ${missing[*]}"
  # Keep package maintainer scripts from starting system daemons (no systemd here).
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  trap '[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  # Postfix: no system-wide configuration (the testbed uses its own config dir).
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  export DEBIAN_FRONTEND=noninteractive
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -print -quit 2>/dev/null)" ] || apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$LOG" 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1; } \
    || { tail -20 "$LOG" >&2; exit 1; }
else
  echo "install.sh: all packages already installed"
fi
# Dedicated owner for the test Maildirs when Dovecot runs as root (uid 0 may not own mail).
id vmail >/dev/null 2>&1 || [ "$(id -u)" != 0 ] || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vmail
end=$(date +%s.%N)
v() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }
awk -v s="$start" -v e="$end" -v d="$(v dovecot-core)" -v p="$(v postfix)" -v f="$(v fetchmail)" \
  'BEGIN{printf "install.sh: done in %.1fs (dovecot %s, postfix %s, fetchmail %s)\n", e-s, d, p, f}'
