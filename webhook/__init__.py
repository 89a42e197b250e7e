"""The Kubernetes validating admission webhook (`gpuadmit serve`)."""
