"""Kubernetes manifests of the task board; k8s/generate.py renders the parts derived from other folders."""
