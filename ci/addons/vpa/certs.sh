#!/usr/bin/env bash
# The VPA admission controller's serving certificate, made at `up` and never stored in
# this repository: a CA and a server certificate for vpa-webhook.kube-system.svc (as
# upstream's pkg/admission-controller/gencerts.sh makes them, with openssl), put in the
# Secret kube-system/vpa-tls-certs (caCert.pem, serverCert.pem, serverKey.pem). An
# existing Secret is kept: the running admission controller and the webhook it
# registered trust that CA. Usage: ci/addons/vpa/certs.sh <kubectl> <kubeconfig>
set -euo pipefail
kubectl_bin=${1:?kubectl}; kubeconfig=${2:?kubeconfig}
k() { "$kubectl_bin" --kubeconfig "$kubeconfig" "$@"; }
if k -n kube-system get secret vpa-tls-certs >/dev/null 2>&1; then
  echo "vpa: Secret kube-system/vpa-tls-certs exists, kept" >&2
  exit 0
fi
command -v openssl >/dev/null || { echo "vpa: openssl is needed for the webhook's certificate" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
service=vpa-webhook.kube-system.svc
cat >"$dir/server.conf" <<CONF
[req]
req_extensions = v3_req
distinguished_name = req_distinguished_name
[req_distinguished_name]
[v3_req]
basicConstraints = CA:FALSE
keyUsage = digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:$service
CONF
openssl req -x509 -new -nodes -newkey rsa:2048 -keyout "$dir/caKey.pem" -out "$dir/caCert.pem" \
  -days 3650 -subj "/CN=vpa_webhook_ca" 2>/dev/null
openssl req -new -nodes -newkey rsa:2048 -keyout "$dir/serverKey.pem" -out "$dir/server.csr" \
  -subj "/CN=$service" -config "$dir/server.conf" 2>/dev/null
openssl x509 -req -in "$dir/server.csr" -CA "$dir/caCert.pem" -CAkey "$dir/caKey.pem" -CAcreateserial \
  -out "$dir/serverCert.pem" -days 3650 -extensions v3_req -extfile "$dir/server.conf" 2>/dev/null
k -n kube-system create secret generic vpa-tls-certs --from-file="$dir/caCert.pem" \
  --from-file="$dir/serverCert.pem" --from-file="$dir/serverKey.pem" >/dev/null
echo "vpa: webhook certificate for $service generated (Secret kube-system/vpa-tls-certs)" >&2
