"""All models, imported here so metadata is complete for migrations."""

from correspondence.models import fit as _fit  # noqa: F401 - registers the cut-to-column listeners
from correspondence.models.api import ApiIdempotencyKey, StaffApiToken
from correspondence.models.audit import AuditEvent, AuditLogIsAppendOnly
from correspondence.models.backup import BackupRecord, ExportRun
from correspondence.models.base import Base, utcnow
from correspondence.models.batch import Batch, BatchProposal, BatchShingle, BatchStatus, ProposalStatus
from correspondence.models.blob import Blob
from correspondence.models.case import (
    Case,
    CaseCategory,
    CaseDocument,
    CaseNote,
    CasePriority,
    CaseStatus,
    CaseStep,
    HelpRequest,
    StepKind,
)
from correspondence.models.closing import ClosingAutoReply, OfficeClosing
from correspondence.models.constituent import (
    Constituent,
    ConstituentEmail,
    ConstituentPhone,
    ConstituentTag,
    DistrictStatus,
)
from correspondence.models.franking import Election, ElectionKind, MassMailApproval
from correspondence.models.intake import DistrictZip, IntakeCursor, IntakeToken, MailboxAccount
from correspondence.models.letters import (
    ApplyRun,
    DeliveryMethod,
    FormLetter,
    LetterVersion,
    Response,
    ResponseMessage,
    ResponseState,
    ReviewComment,
    VersionState,
)
from correspondence.models.message import (
    OPEN_STATUSES,
    Channel,
    Direction,
    Message,
    MessageStatus,
    Stance,
)
from correspondence.models.notices import ApprovalDelegation, Notice
from correspondence.models.outbound import (
    Bounce,
    BounceKind,
    BounceState,
    Suppression,
    SuppressionReason,
)
from correspondence.models.paragraphs import ParagraphRevision, ParagraphState, StandardParagraph
from correspondence.models.privacy import Erasure, LegalHold, RetentionRule, RetentionRun, SubjectAccessExport
from correspondence.models.routing import RoutingRule
from correspondence.models.run import RunState
from correspondence.models.security import LoginAttempt, RecoveryCode, WebAuthnCredential
from correspondence.models.segment import AnalyticsSnapshot, ConstituentImport, ReportRun, Segment
from correspondence.models.staffer import Role, Staffer
from correspondence.models.subscriptions import (
    Newsletter,
    Subscription,
    SubscriptionList,
    SubscriptionSource,
    SubscriptionStatus,
)
from correspondence.models.topic import LOC_POLICY_AREAS, Topic, TopicModel
from correspondence.models.webhooks import WebhookDelivery, WebhookSubscription

__all__ = [
    "ApiIdempotencyKey",
    "StaffApiToken",
    "ClosingAutoReply",
    "OfficeClosing",
    "Newsletter",
    "Subscription",
    "SubscriptionList",
    "SubscriptionSource",
    "SubscriptionStatus",
    "BackupRecord",
    "ExportRun",
    "Erasure",
    "LegalHold",
    "RetentionRule",
    "RetentionRun",
    "SubjectAccessExport",
    "Election",
    "ElectionKind",
    "MassMailApproval",
    "Bounce",
    "BounceKind",
    "BounceState",
    "Suppression",
    "SuppressionReason",
    "ApprovalDelegation",
    "Notice",
    "ParagraphRevision",
    "ParagraphState",
    "StandardParagraph",
    "LoginAttempt",
    "RecoveryCode",
    "WebAuthnCredential",
    "AnalyticsSnapshot",
    "TopicModel",
    "ConstituentTag",
    "ConstituentImport",
    "ReportRun",
    "Segment",
    "StepKind",
    "CaseStep",
    "HelpRequest",
    "CaseStatus",
    "CasePriority",
    "CaseNote",
    "CaseDocument",
    "CaseCategory",
    "Case",
    "VersionState",
    "ReviewComment",
    "ResponseState",
    "Response",
    "ResponseMessage",
    "LetterVersion",
    "FormLetter",
    "DeliveryMethod",
    "ApplyRun",
    "LOC_POLICY_AREAS",
    "OPEN_STATUSES",
    "AuditEvent",
    "AuditLogIsAppendOnly",
    "Base",
    "Batch",
    "BatchProposal",
    "BatchShingle",
    "BatchStatus",
    "Blob",
    "Channel",
    "Constituent",
    "ConstituentEmail",
    "ConstituentPhone",
    "Direction",
    "DistrictStatus",
    "DistrictZip",
    "IntakeCursor",
    "IntakeToken",
    "MailboxAccount",
    "Message",
    "MessageStatus",
    "ProposalStatus",
    "Role",
    "RoutingRule",
    "RunState",
    "Stance",
    "Staffer",
    "Topic",
    "utcnow",
    "WebhookDelivery",
    "WebhookSubscription",
]
