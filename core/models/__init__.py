"""All ORM models, one module per aggregate. Import from here."""

from core.models.agents import CreativeItem, CreativeKind, LlmCacheEntry, LlmCall, Offer, OfferKind
from core.models.base import Base
from core.models.budget import Budget, BudgetScope
from core.models.campaign import (
    Assignment,
    AuditEntry,
    Campaign,
    CampaignKind,
    CampaignState,
    CampaignVariant,
    TriggerCheck,
    TriggerStatus,
)
from core.models.cart import Cart, CartStatus
from core.models.consent import (
    Channel,
    Consent,
    ConsentBasis,
    ConsentPurpose,
    ConsentStatus,
    Suppression,
    SuppressionReason,
)
from core.models.customer import Customer
from core.models.event import Event, EventKey, EventType
from core.models.ledger import CostComponent, CostEntry
from core.models.messaging import (
    Message,
    MessageStatus,
    OutboxMessage,
    Outcome,
    OutcomeKind,
    Provider,
    ProviderEvent,
    ProviderEventKey,
)
from core.models.ml import ModelKind, ModelStage, ModelVersion, Prediction, RunStatus, TrainingRun
from core.models.monitoring import DriftMeasurement
from core.models.order import Order
from core.models.source import Source
from core.models.subscription import Subscription
from core.models.user import ApiToken, Role, User, UserSession

__all__ = [
    "ApiToken",
    "Assignment",
    "AuditEntry",
    "Base",
    "Budget",
    "BudgetScope",
    "Campaign",
    "CampaignKind",
    "CampaignState",
    "CampaignVariant",
    "Cart",
    "CartStatus",
    "Channel",
    "Consent",
    "ConsentBasis",
    "ConsentPurpose",
    "ConsentStatus",
    "CostComponent",
    "CostEntry",
    "CreativeItem",
    "CreativeKind",
    "Customer",
    "DriftMeasurement",
    "Event",
    "EventKey",
    "EventType",
    "LlmCacheEntry",
    "LlmCall",
    "Message",
    "MessageStatus",
    "ModelKind",
    "ModelStage",
    "ModelVersion",
    "Offer",
    "OfferKind",
    "Order",
    "OutboxMessage",
    "Outcome",
    "OutcomeKind",
    "Prediction",
    "Provider",
    "ProviderEvent",
    "ProviderEventKey",
    "Role",
    "RunStatus",
    "Source",
    "Subscription",
    "Suppression",
    "SuppressionReason",
    "TrainingRun",
    "TriggerCheck",
    "TriggerStatus",
    "User",
    "UserSession",
]
