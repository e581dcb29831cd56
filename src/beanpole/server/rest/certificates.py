"""Certificates: TLS certificates the load balancer's HTTPS listener serves by SNI.

``POST`` answers 201 when it stores a new name and 200 when it renews one (``renewed`` in
the body says the same). No route ever answers key material.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from beanpole.api import inputs
from beanpole.api.views import CertificatesView, CertificateView
from beanpole.server.context import Context
from beanpole.server.rest.auth import API
from beanpole.server.rest.errors import responses


def router(ctx: Context) -> APIRouter:
    api = APIRouter(prefix=f"{API}/certificates", tags=["certificates"])
    certificates = ctx.certificates

    @api.get("", responses=responses(401, 405))
    async def list_certificates() -> CertificatesView:
        """Every stored certificate: its names, validity, fingerprint and the environments
        whose HTTPS listener names it."""
        return await certificates.list()

    renewed = {"model": CertificateView, "description": "Renewed: the name existed"}

    @api.post(
        "",
        status_code=201,
        responses={**responses(400, 401, 405, 503), 200: renewed},
    )
    async def add_certificate(body: inputs.AddCertificate, response: Response) -> CertificateView:
        """Store a certificate, its key and chain under ``name`` (201), or renew the one of
        that name (200); then the load balancer serves it. Refused (400) when the PEM is not
        valid, the key does not match, or the certificate has expired."""
        view = await certificates.add(body.name, body.certificate, body.private_key, body.chain)
        if view.renewed:
            response.status_code = 200
        return view

    @api.delete("/{name}", responses=responses(401, 404, 405, 409, 503))
    async def remove_certificate(name: str) -> CertificateView:
        """Forget a certificate; refused (409) while an environment's
        ``aws:elbv2:listener:443`` ``SSLCertificateArns`` names it."""
        return await certificates.remove(name)

    return api
