"""``IntegrationService``: external services (register, get, list, delete, call),
webhooks (``webhooks.py``) and ``TriggerEvent`` (event steps wait on it). Each call works
in the caller's namespace."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format

from agentmesh import wire
from agentmesh.v1 import integration_pb2, integration_pb2_grpc
from coordinator import errors
from coordinator.api.scope import namespace_of
from coordinator.api.status import mapped
from coordinator.api.webhooks import WebhookMethods
from coordinator.engine.runtime import WorkflowRuntime
from coordinator.engine.triggers import TriggerInfo
from coordinator.integrations.outbox import Outbox
from coordinator.integrations.registry import ServiceInfo, ServiceRegistry


def config_data(msg: integration_pb2.ExternalServiceConfig) -> dict[str, Any]:
    """The configuration as ``ServiceConfig.parse`` reads it (proto field names)."""
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def info_msg(info: ServiceInfo) -> integration_pb2.ExternalServiceInfo:
    config = json_format.ParseDict(
        info.config.to_data(), integration_pb2.ExternalServiceConfig(), ignore_unknown_fields=True
    )
    return integration_pb2.ExternalServiceInfo(
        config=config,
        breaker_state=info.breaker,
        calls=info.calls,
        cache_hits=info.cache_hits,
        cache_misses=info.cache_misses,
    )


class IntegrationService(WebhookMethods, integration_pb2_grpc.IntegrationServiceServicer):
    """The servicer (see the module docstring) over the runtime, the services and the
    webhooks' outbox."""

    def __init__(self, runtime: WorkflowRuntime, services: ServiceRegistry, outbox: Outbox) -> None:
        self._rt = runtime
        self._services = services
        self._outbox = outbox

    @mapped
    async def RegisterExternalService(
        self,
        request: integration_pb2.RegisterExternalServiceRequest,
        context: grpc.aio.ServicerContext,
    ) -> integration_pb2.RegisterExternalServiceResponse:
        if not request.HasField("service"):
            raise errors.InvalidArgument("service is required (an ExternalServiceConfig)")
        config = await self._services.register(namespace_of(context), config_data(request.service))
        return integration_pb2.RegisterExternalServiceResponse(service_id=config.name)

    @mapped
    async def GetExternalService(
        self, request: integration_pb2.GetExternalServiceRequest, context: grpc.aio.ServicerContext
    ) -> integration_pb2.GetExternalServiceResponse:
        info = await self._services.get(namespace_of(context), _id(request.service_id))
        return integration_pb2.GetExternalServiceResponse(service=info_msg(info))

    @mapped
    async def ListExternalServices(
        self,
        request: integration_pb2.ListExternalServicesRequest,
        context: grpc.aio.ServicerContext,
    ) -> integration_pb2.ListExternalServicesResponse:
        infos = await self._services.list(namespace_of(context))
        return integration_pb2.ListExternalServicesResponse(services=[info_msg(i) for i in infos])

    @mapped
    async def DeleteExternalService(
        self,
        request: integration_pb2.DeleteExternalServiceRequest,
        context: grpc.aio.ServicerContext,
    ) -> integration_pb2.DeleteExternalServiceResponse:
        await self._services.delete(namespace_of(context), _id(request.service_id))
        return integration_pb2.DeleteExternalServiceResponse()

    @mapped
    async def CallExternalService(
        self, request: integration_pb2.CallExternalServiceRequest, context: grpc.aio.ServicerContext
    ) -> integration_pb2.CallExternalServiceResponse:
        if not request.operation.strip():
            raise errors.InvalidArgument(
                "operation is required: a declared operation's name, or 'METHOD /path'"
            )
        result = await self._services.call(
            namespace_of(context),
            _id(request.service_id),
            request.operation,
            wire.from_struct(request.params),
            request.timeout_ms,
        )
        return integration_pb2.CallExternalServiceResponse(
            result=wire.to_value(result.value),
            http_status=result.status,
            cached=result.cached,
            attempts=result.attempts,
        )

    @mapped
    async def TriggerEvent(
        self, request: integration_pb2.TriggerEventRequest, context: grpc.aio.ServicerContext
    ) -> integration_pb2.TriggerEventResponse:
        payload = wire.from_struct(request.payload)
        outcome = await self._rt.trigger_event(
            request.event,
            payload,
            request.correlation_key,
            namespace_of(context),
            request.event_id.strip(),
        )
        return integration_pb2.TriggerEventResponse(
            delivered=outcome.delivered, started=outcome.started, refused=outcome.refused
        )

    @mapped
    async def ListTriggers(
        self, request: integration_pb2.ListTriggersRequest, context: grpc.aio.ServicerContext
    ) -> integration_pb2.ListTriggersResponse:
        listed = self._rt.triggers.listed(namespace_of(context))
        return integration_pb2.ListTriggersResponse(triggers=[trigger_msg(t) for t in listed])


def _id(service_id: str) -> str:
    if not service_id.strip():
        raise errors.InvalidArgument("service_id is required (the service's name)")
    return service_id.strip()


def trigger_msg(t: TriggerInfo) -> integration_pb2.Trigger:
    """A trigger as the protocol shows it."""
    s = t.spec
    msg = integration_pb2.Trigger(
        workflow=t.workflow,
        index=t.index,
        event=s.event,
        filter=s.filter,
        cron=s.cron,
        missed=s.missed if s.cron else "",
    )
    if t.next_fire is not None:
        msg.next_fire.FromDatetime(t.next_fire)
    return msg
