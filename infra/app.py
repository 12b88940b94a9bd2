"""Building the CDK app: settings from context, the stack, and cdk-nag as a validation plugin."""

from __future__ import annotations

import os

from aws_cdk import App, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from infra.settings import MeshdropSettings
from infra.stack import MeshdropStack


def build(app: App) -> MeshdropStack:
    """Add the meshdrop stack to ``app`` and check it with the AWS Solutions rules on synth.

    Raises
    ------
    infra.settings.SettingsError
        When a ``meshdrop:*`` context value is invalid.
    """
    settings = MeshdropSettings.from_context(app.node)
    # CDK_DEFAULT_ACCOUNT/REGION: what `cdk` found in the caller's credentials, if any.
    stack = MeshdropStack(
        app, settings.stack_name, settings=settings, env=settings.environment(os.environ)
    )
    Tags.of(stack).add("project", "meshdrop")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return stack
