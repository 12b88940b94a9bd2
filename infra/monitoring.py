"""Monitoring: alarms on what needs a person, an alarm topic, and one dashboard."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(5)


class MonitoringConstruct(Construct):
    """Alarms publish to ``alarm_topic``; every alarm ignores missing data (idle is healthy)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        ingest_queue: sqs.IQueue,
        dead_letter_queues: Sequence[sqs.IQueue],
        functions: Sequence[lambda_.IFunction],
        failed_jobs_rule: events.IRule,
        oldest_message_threshold: Duration,
        email: str | None,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        # CloudWatch cannot use the AWS-managed SNS key, so alarms need a key of their own.
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            description="meshdrop alarm topic",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" means this key
            )
        )
        self.alarm_topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="meshdrop alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        if email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(email))

        self.alarms: list[cloudwatch.Alarm] = []
        for queue in dead_letter_queues:
            self._alarm(
                f"{queue.node.scope.node.id}{queue.node.id}Depth",
                queue.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                threshold=1,
                description="Messages reached a dead-letter queue: inspect and redrive them",
            )
        for function in functions:
            self._alarm(
                f"{function.node.scope.node.id}Errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=1,
                description="A meshdrop function failed; see its log group",
            )
        self.oldest_message_metric = ingest_queue.metric_approximate_age_of_oldest_message(
            period=PERIOD, statistic="Maximum"
        )
        self._alarm(
            "IngestBacklog",
            self.oldest_message_metric,
            threshold=oldest_message_threshold.to_seconds(),
            description="Uploads wait unprocessed on the ingest queue",
        )
        self.failed_jobs_metric = cloudwatch.Metric(
            namespace="AWS/Events",
            metric_name="TriggeredRules",
            dimensions_map={"RuleName": failed_jobs_rule.rule_name},
            period=PERIOD,
            statistic="Sum",
        )
        self._alarm(
            "FailedBatchJobs",
            self.failed_jobs_metric,
            threshold=1,
            description="Generator jobs failed for good (after retries)",
        )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.days(1))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Ingest queue",
                left=[
                    ingest_queue.metric_number_of_messages_received(period=PERIOD),
                    ingest_queue.metric_approximate_number_of_messages_visible(period=PERIOD),
                ],
                right=[self.oldest_message_metric],
            ),
            cloudwatch.GraphWidget(
                title="Functions",
                left=[f.metric_invocations(period=PERIOD) for f in functions],
                right=[f.metric_errors(period=PERIOD) for f in functions],
            ),
            cloudwatch.GraphWidget(
                title="Function duration (p90)",
                left=[f.metric_duration(period=PERIOD, statistic="p90") for f in functions],
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Failed Batch jobs",
                left=[self.failed_jobs_metric.with_(label="Failed Batch jobs")],
            ),
            cloudwatch.GraphWidget(
                title="Dead-letter queues",
                left=[
                    q.metric_approximate_number_of_messages_visible(period=PERIOD)
                    for q in dead_letter_queues
                ],
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms),
        )

    def _alarm(
        self, name: str, metric: cloudwatch.IMetric, *, threshold: float, description: str
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.alarm_topic))
        self.alarms.append(alarm)
        return alarm
