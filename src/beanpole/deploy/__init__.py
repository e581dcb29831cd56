"""Deployments: pure plans per policy (`policies`) and the runner that carries them out."""
