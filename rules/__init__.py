"""A clinical rules engine as a reusable Django app: rules a clinician edits in the admin, compiled
into durable_rules, judged by one decision policy. It knows nothing of any domain; a domain app
declares its facts to it and sends them for evaluation.

The public API is these modules (``PUBLIC_MODULES``), and a domain app imports nothing else:

- ``rules.registry``: the catalog a domain fills in its ``AppConfig.ready()`` (fact types and
  their fields, derived figures, categories, severities, the subject's words), the
  ``FactSource`` hook class, and the domain's jobs and periodic jobs.
- ``rules.evaluation``: matching facts against the live version and the decision policy that
  turns matches into advice (``Fact``, ``facts_evaluate``, ``timeline_judge``,
  ``DecisionState``, ``Evaluator``).
- ``rules.services``: the writes (save rules to the draft, publish, roll back, discard) and
  ``ruleset_check``.
- ``rules.selectors``: the reads (rule specs, the draft, the live version).
- ``rules.packs``: rule packs (read, export, import, install a domain's default pack) and diffs.
- ``rules.spec``: a rule as plain data, its validation and the messages clinicians read.
- ``rules.jobs``: the task queue (start a job, look one up).
- ``rules.models``: the models, for foreign keys and queries of the domain's own.
- ``rules.simulation``: try it and simulate, what a draft would do against the live version, and
  the burden each puts on the subjects.
- ``rules.governance``: requests to publish or roll back, and their approval by another clinician.
- ``rules.conf``: the app's settings (``settings.RULES_ENGINE``).
- ``rules.signals``: what the app tells others (a job finished, with its kind and outcome).
- ``rules.admin``: ``ActionPermissionMixin`` for the project's other admins.

Everything else is private and may change without notice: ``rules.internal`` (the compiler, the
engine adapter, the matching pass), the modules inside ``rules.admin``, the app's configuration
and system checks, its management commands and its migrations.
"""

PUBLIC_MODULES = (
    "rules.registry",
    "rules.evaluation",
    "rules.services",
    "rules.selectors",
    "rules.packs",
    "rules.spec",
    "rules.jobs",
    "rules.models",
    "rules.simulation",
    "rules.governance",
    "rules.conf",
    "rules.signals",
    "rules.admin",
)
