#!/bin/sh
# The same rule for hosts with iptables (see nftables.conf for why).
# Usage: SENDER_USERS="postwarden-worker postfix" sh docker/egress/iptables.sh
set -eu
SENDER_USERS=${SENDER_USERS:-postwarden-worker}
for cmd in iptables ip6tables; do
  command -v "$cmd" >/dev/null 2>&1 || continue
  "$cmd" -N POSTWARDEN_EGRESS 2>/dev/null || "$cmd" -F POSTWARDEN_EGRESS
  "$cmd" -A POSTWARDEN_EGRESS -o lo -j RETURN
  for user in $SENDER_USERS; do
    "$cmd" -A POSTWARDEN_EGRESS -m owner --uid-owner "$user" -j RETURN
  done
  "$cmd" -A POSTWARDEN_EGRESS -j LOG --log-prefix "postwarden-egress-block "
  "$cmd" -A POSTWARDEN_EGRESS -p tcp -j REJECT --reject-with tcp-reset
  for port in 25 465 587; do
    "$cmd" -C OUTPUT -p tcp --dport "$port" -j POSTWARDEN_EGRESS 2>/dev/null \
      || "$cmd" -A OUTPUT -p tcp --dport "$port" -j POSTWARDEN_EGRESS
  done
done
