"""Domains: host names an environment answers on besides its CNAME (`core.domains`).

Adding or removing one changes the load balancer's host map through HAProxy's runtime API
(no reload), and is an event of the environment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from beanpole.api.views import DomainsView
from beanpole.core.domains import MAX_DOMAINS, check_domain, normal
from beanpole.core.errors import Conflict, InvalidInput
from beanpole.core.model import Environment, EnvStatus
from beanpole.services.operations import Operations


class Domains:
    def __init__(
        self, ops: Operations, own_domains: tuple[str, ...], url: Callable[[str], str]
    ) -> None:
        self.ops = ops
        self.store = ops.store
        self.own_domains = own_domains  # the server's: names under them are CNAMEs
        self.url = url

    async def list(self, name: str) -> DomainsView:
        env = await asyncio.to_thread(self.store.environment, name)
        return await asyncio.to_thread(self._view, env)

    async def add(self, name: str, domain: str) -> DomainsView:
        env = self.store.environment(name)
        if env.status is EnvStatus.TERMINATING:
            raise Conflict(f"Environment {env.name} is being terminated: it takes no domain.")
        domain = check_domain(domain, self.own_domains)
        if len(self.store.domains(env.id).get(env.id, [])) >= MAX_DOMAINS:
            raise InvalidInput(
                f"{env.name} has {MAX_DOMAINS} domains already, the most one environment may "
                "have. Remove one first (beanpole domains remove ENV DOMAIN)."
            )
        self.store.add_domain(env, domain)
        await self.ops.fleet.sync_lb()
        self.ops._event(env, f"{domain} now routes to environment {env.name}.")
        return self._view(env)

    async def remove(self, name: str, domain: str) -> DomainsView:
        env = self.store.environment(name)
        self.store.remove_domain(env, normal(domain))
        await self.ops.fleet.sync_lb()
        self.ops._event(env, f"{domain} no longer routes to environment {env.name}.")
        return self._view(env)

    def _view(self, env: Environment) -> DomainsView:
        return DomainsView(
            environment=env.name,
            cname_url=self.url(env.cname),
            domains=self.store.domains(env.id).get(env.id, []),
        )
