#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth` / `npx cdk deploy` run this (see cdk.json)."""

from aws_cdk import App

from infra.app import build

app = App()
build(app)
app.synth()
