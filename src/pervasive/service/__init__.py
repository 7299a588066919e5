"""The pervasive-contract runtime (paper 001): one service per contract.

See README.md in this folder. Modules: ``spec`` (the service spec file),
``deployment`` (deploy and upgrade a logic contract over its contract database);
sub-packages: ``triggers`` (context triggers).
"""

from pervasive.service.arguments import ArgumentPlan, InputSource, Origin, to_abi
from pervasive.service.calls import CallSender
from pervasive.service.deployment import (
    DeploymentRefused,
    ServiceBook,
    ServiceDeployment,
    compile_logic,
    deploy_service,
    upgrade_service,
)
from pervasive.service.inbox import CallStatus, Inbox, InboxCall, NewCall
from pervasive.service.rest import INBOX_PATH, RestBindings, RestRoute
from pervasive.service.runtime import ServiceRuntime, service_folder, topic_filters
from pervasive.service.spec import (
    SHIPPED,
    Argument,
    ArgumentValue,
    CoLocatedSpec,
    ContractSection,
    DatabaseSection,
    MqttBinding,
    RestBinding,
    ServiceSpec,
    SpecError,
    TriggerSpec,
    check_against_abi,
    load_spec,
    parse_argument,
)
from pervasive.service.things import ReadingBinding, ReadingIntake

__all__ = [
    "INBOX_PATH",
    "SHIPPED",
    "Argument",
    "ArgumentPlan",
    "ArgumentValue",
    "CallSender",
    "CallStatus",
    "CoLocatedSpec",
    "ContractSection",
    "DatabaseSection",
    "DeploymentRefused",
    "Inbox",
    "InboxCall",
    "InputSource",
    "MqttBinding",
    "NewCall",
    "Origin",
    "ReadingBinding",
    "ReadingIntake",
    "RestBinding",
    "RestBindings",
    "RestRoute",
    "ServiceBook",
    "ServiceDeployment",
    "ServiceRuntime",
    "ServiceSpec",
    "SpecError",
    "TriggerSpec",
    "check_against_abi",
    "compile_logic",
    "deploy_service",
    "load_spec",
    "parse_argument",
    "service_folder",
    "to_abi",
    "topic_filters",
    "upgrade_service",
]
