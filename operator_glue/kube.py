"""Thin helpers over the official `kubernetes` client: connect, and server-side apply any manifest."""
from __future__ import annotations

import os
from typing import Optional

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

FIELD_MANAGER = "mmon"


class KubeError(RuntimeError):
    """No usable connection to an API server (bad kubeconfig, unreachable, unauthorized)."""


class NotServed(LookupError):
    """The API server does not serve this kind (its CRD is not installed)."""


def connect(kubeconfig: Optional[str] = None) -> DynamicClient:
    """A dynamic client from a kubeconfig file, or the pod's service account when running in a cluster."""
    try:
        if kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ:
            config.load_incluster_config()
            return DynamicClient(client.ApiClient())
        return DynamicClient(config.new_client_from_config(config_file=kubeconfig))
    except ConfigException as err:
        raise KubeError(f"no usable kubeconfig ({kubeconfig or '$KUBECONFIG or ~/.kube/config'}): {err}") from err
    except (urllib3.exceptions.HTTPError, ApiException) as err:
        raise KubeError(f"cannot reach the API server: {str(err).splitlines()[0]}") from err


def resource_api(dyn: DynamicClient, api_version: str, kind: str):
    try:
        return dyn.resources.get(api_version=api_version, kind=kind)
    except ResourceNotFoundError as err:
        raise NotServed(f"{kind} ({api_version}) is not served by the API server: is its CRD installed?") from err


def apply(dyn: DynamicClient, body: dict, *, field_manager: str = FIELD_MANAGER, dry_run: bool = False) -> dict:
    """Server-side apply ``body`` (create or update), rejecting unknown or duplicate fields (Strict).

    Returns the object as stored (or as it would be, with ``dry_run``)."""
    api = resource_api(dyn, body["apiVersion"], body["kind"])
    params = {"field_manager": field_manager, "force_conflicts": True,
              "query_params": [("fieldValidation", "Strict")]}
    if dry_run:
        params["dry_run"] = "All"
    return api.server_side_apply(body=body, namespace=body["metadata"].get("namespace"), **params).to_dict()
