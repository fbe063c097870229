#!/usr/bin/env bash
# Provide the binaries of the Kubernetes test environment (idempotent; cached per user under ~/.cache/mmon/k8s,
# so every checkout on a machine shares one build; K8S_CACHE_DIR overrides):
#   etcd            Debian's etcd-server package (installed with apt-get when missing; needs root)
#   kube-apiserver, kube-controller-manager (its garbage collector deletes a ModelMonitor's children)
#                   built from k8s.io/kubernetes through the Go module proxy. The module's go.mod replaces
#                   its staging modules (k8s.io/api, apimachinery, client-go, ...) with ./staging paths that
#                   do not exist in the published module, so a throw-away module re-points each one at the
#                   published k8s.io/<name> v0.<minor>.<patch> of the same release.
# (The official Flink operator CRDs the tests install are vendored in k8s/vendor/, see tests/k8s_testenv.py.)
# Usage: scripts/k8s-testenv.sh [etcd|kube-apiserver|kube-controller-manager|all]   (prints the resulting paths)
#        K8S_NO_BUILD=1 makes a missing binary an error (exit 3) instead of building it.
set -euo pipefail
cache="${K8S_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mmon/k8s}"
k8s_version="${K8S_VERSION:-v1.34.4}"
staging_version="v0.${k8s_version#v1.}"
bin="$cache/bin"
mkdir -p "$bin"

ensure_etcd() {
  if command -v etcd >/dev/null; then echo "etcd: $(command -v etcd)"; return; fi
  echo "etcd: installing Debian package etcd-server" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server >&2
  echo "etcd: $(command -v etcd)"
}

version_ldflags() {
  # What the Kubernetes release build stamps, so that /version and the logs name the real release.
  local pkg=k8s.io/component-base/version minor="${k8s_version#v1.}"
  minor="${minor%%.*}"
  echo "-X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
}

build_component() {
  local component="$1"
  local out="$bin/$component-$k8s_version"
  if [[ -x "$out" ]]; then echo "$component: $out"; return; fi
  if [[ -n "${K8S_NO_BUILD:-}" ]]; then echo "$component: not built ($out missing)" >&2; exit 3; fi
  local mod="$cache/build-$k8s_version"
  mkdir -p "$mod"
  echo "$component: resolving k8s.io/kubernetes@$k8s_version" >&2
  local upstream_mod
  upstream_mod="$(cd "$mod" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$k8s_version" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
  {
    echo "module mmon.dev/kubernetes-build"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $k8s_version"
    echo
    echo "replace ("
    grep -oE 'k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$upstream_mod" \
      | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > "$mod/go.mod"
  echo "$component: building with $(go version | cut -d' ' -f3) (staging modules at $staging_version; slow the first time)" >&2
  (cd "$mod" && GOFLAGS=-mod=mod go get "k8s.io/kubernetes/cmd/$component@$k8s_version" >&2 \
    && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$(version_ldflags)" -o "$out.tmp" \
         "k8s.io/kubernetes/cmd/$component" >&2)
  mv "$out.tmp" "$out"
  echo "$component: $out"
}

case "${1:-all}" in
  etcd) ensure_etcd ;;
  kube-apiserver|kube-controller-manager) build_component "$1" ;;
  all) ensure_etcd; build_component kube-apiserver; build_component kube-controller-manager ;;
  *) echo "usage: $0 [etcd|kube-apiserver|kube-controller-manager|all]" >&2; exit 2 ;;
esac
