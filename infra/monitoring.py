"""Monitoring: alarms on what needs a person, an alarm topic, a spend budget, one dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

PERIOD = Duration.minutes(5)
#: The functions' own metrics (Powertools, lambdas.common.observability): their namespace, and
#: the ``service`` dimension Powertools adds to each.
FUNCTIONS_NAMESPACE = "meshdrop"
#: Published by the reconciler: the age of the oldest job still RUNNABLE (Batch has no such
#: metric).
RUNNABLE_AGE_METRIC = "OldestRunnableJobAgeSeconds"
#: Ingest and the state function: deliveries that failed their schema and were dropped.
INVALID_EVENTS_METRIC = "InvalidEvents"
#: Budget alerts: actual spend past 80 % of the limit, forecast past 100 %.
BUDGET_ALERTS = (("ACTUAL", 80), ("FORECASTED", 100))


def _service(name: str) -> iam.IPrincipal:
    return cast(iam.IPrincipal, iam.ServicePrincipal(name))


def _parent_id(construct: IConstruct) -> str:
    """Id of the construct that owns ``construct`` ("Ingest" for the ingest function)."""
    parent = construct.node.scope
    return parent.node.id if parent is not None else ""


def triggered_rules(rule: events.IRule) -> cloudwatch.Metric:
    """How often ``rule`` matched an event, per period."""
    return cloudwatch.Metric(
        namespace="AWS/Events",
        metric_name="TriggeredRules",
        dimensions_map={"RuleName": rule.rule_name},
        period=PERIOD,
        statistic="Sum",
    )


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
        queue_blocked_rule: events.IRule,
        oldest_message_threshold: Duration,
        runnable_threshold: Duration,
        monthly_budget_usd: int,
        email: str | None,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self._topic(email, removal_policy)
        self.alarms: list[cloudwatch.Alarm] = []
        self._queue_alarms(ingest_queue, dead_letter_queues, oldest_message_threshold)
        for function in functions:
            self._alarm(
                f"{_parent_id(function)}Errors",
                function.metric_errors(period=PERIOD, statistic="Sum"),
                threshold=1,
                description="A meshdrop function failed; see its log group",
            )
        self._job_alarms(failed_jobs_rule, queue_blocked_rule, runnable_threshold)
        self._invalid_events_alarm()
        self.budget = self._budget(monthly_budget_usd) if monthly_budget_usd else None
        self._dashboard(ingest_queue, dead_letter_queues, functions)

    def _topic(self, email: str | None, removal_policy: RemovalPolicy) -> None:
        # CloudWatch cannot use the AWS-managed SNS key, so alarms need a key of their own.
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            description="meshdrop alarm topic",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        # Only on behalf of this account: without the condition any account's alarm or budget
        # that targets this topic could use the key (confused deputy).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAndBudgetsForThisAccount",
                principals=[
                    _service("cloudwatch.amazonaws.com"),
                    _service("budgets.amazonaws.com"),
                ],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        self.alarm_topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="meshdrop alarms",
            master_key=cast(kms.IKey, self.key),
            enforce_ssl=True,
        )
        if email:
            self.alarm_topic.add_subscription(
                cast(sns.ITopicSubscription, subscriptions.EmailSubscription(email))
            )

    def _queue_alarms(
        self,
        ingest_queue: sqs.IQueue,
        dead_letter_queues: Sequence[sqs.IQueue],
        oldest_message_threshold: Duration,
    ) -> None:
        for queue in dead_letter_queues:
            self._alarm(
                f"{_parent_id(queue)}{queue.node.id}Depth",
                queue.metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                threshold=1,
                description="Messages reached a dead-letter queue: inspect and redrive them",
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

    def _job_alarms(
        self,
        failed_jobs_rule: events.IRule,
        queue_blocked_rule: events.IRule,
        runnable_threshold: Duration,
    ) -> None:
        self.failed_jobs_metric = triggered_rules(failed_jobs_rule)
        self._alarm(
            "FailedBatchJobs",
            self.failed_jobs_metric,
            threshold=1,
            description="Generator jobs failed for good (after retries)",
        )
        self.queue_blocked_metric = triggered_rules(queue_blocked_rule)
        self._alarm(
            "BatchQueueBlocked",
            self.queue_blocked_metric,
            threshold=1,
            description="A job blocks the queue in RUNNABLE (no capacity, quota or a "
            "misconfiguration); the queue cancels it after the runnable timeout",
        )
        self.runnable_age_metric = cloudwatch.Metric(
            namespace=FUNCTIONS_NAMESPACE,
            metric_name=RUNNABLE_AGE_METRIC,
            dimensions_map={"service": "meshdrop"},
            period=PERIOD,
            statistic="Maximum",
        )
        self._alarm(
            "RunnableAge",
            self.runnable_age_metric,
            threshold=runnable_threshold.to_seconds(),
            description="A generator job has waited in RUNNABLE longer than the runnable "
            "timeout; the queue should have cancelled it (check capacity and quotas)",
        )

    def _invalid_events_alarm(self) -> None:
        self.invalid_events_metric = cloudwatch.Metric(
            namespace=FUNCTIONS_NAMESPACE,
            metric_name=INVALID_EVENTS_METRIC,
            dimensions_map={"service": "meshdrop"},
            period=PERIOD,
            statistic="Sum",
        )
        self._alarm(
            "InvalidEvents",
            self.invalid_events_metric,
            threshold=1,
            description="Ingest or the state function dropped deliveries that failed their "
            "schema (never retried); their logs say why",
        )

    def _budget(self, monthly_usd: int) -> budgets.CfnBudget:
        # Budgets publishes to the encrypted topic only if the topic policy lets it.
        self.alarm_topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowBudgetsForThisAccount",
                principals=[_service("budgets.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.alarm_topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        subscriber = budgets.CfnBudget.SubscriberProperty(
            subscription_type="SNS", address=self.alarm_topic.topic_arn
        )
        return budgets.CfnBudget(
            self,
            "MonthlyBudget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=monthly_usd, unit="USD"),
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=kind,
                        comparison_operator="GREATER_THAN",
                        threshold=percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=[subscriber],
                )
                for kind, percent in BUDGET_ALERTS
            ],
        )

    def _dashboard(
        self,
        ingest_queue: sqs.IQueue,
        dead_letter_queues: Sequence[sqs.IQueue],
        functions: Sequence[lambda_.IFunction],
    ) -> None:
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
                title="Batch jobs",
                left=[
                    self.failed_jobs_metric.with_(label="Failed"),
                    self.queue_blocked_metric.with_(label="Queue blocked"),
                ],
                right=[self.runnable_age_metric.with_(label="Oldest RUNNABLE (s)")],
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
        topic = cast(sns.ITopic, self.alarm_topic)
        alarm.add_alarm_action(cast(cloudwatch.IAlarmAction, actions.SnsAction(topic)))
        self.alarms.append(alarm)
        return alarm
