"""Kubernetes manifests of the task board; ``python -m k8s.generate`` writes the parts derived from other folders."""
