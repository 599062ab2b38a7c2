"""The documented flags of every command the deploy scripts print, to check dry-runs against.

gcloud is not installable here, so its flags are a table copied from the reference pages
(https://cloud.google.com/sdk/gcloud/reference/<command path>, e.g. .../functions/deploy,
.../run/deploy, .../run/jobs/deploy, .../compute/instance-templates/create). Each entry is
the subset of a command's documented flags a deploy script may use, spelled as documented;
`--[no-]x` flags are listed in both forms. aws flags come from the installed awscli itself
(its argument tables are generated from the same service models as
https://docs.aws.amazon.com/cli/latest/reference/), docker's from
https://docs.docker.com/reference/cli/docker/.
"""

from __future__ import annotations

from functools import lru_cache


def _flags(*groups: str) -> frozenset[str]:
    """A flag set written as space-separated groups."""
    return frozenset(flag for group in groups for flag in group.split())


GCLOUD_WIDE = _flags(
    "--project --quiet --format --verbosity --account --configuration --billing-project",
    "--impersonate-service-account",
)
_RUN_SHARED = (
    "--region --image --cpu --memory --command --args --set-env-vars --env-vars-file",
    "--update-env-vars --service-account --gpu --gpu-type --labels --async --source --set-secrets",
    "--add-volume --add-volume-mount",
)

_PUSH_SUBSCRIPTION = (
    "--push-endpoint --push-auth-service-account --push-auth-token-audience --ack-deadline",
    "--dead-letter-topic --max-delivery-attempts --min-retry-delay --max-retry-delay",
    "--message-retention-duration --labels",
)

GCLOUD: dict[tuple[str, ...], frozenset[str]] = {
    # .../functions/deploy, .../functions/describe
    ("functions", "deploy"): _flags(
        "--region --gen2 --runtime --source --ignore-file --entry-point --allow-unauthenticated",
        "--no-allow-unauthenticated --concurrency --memory --cpu --min-instances --max-instances",
        "--clear-min-instances --clear-max-instances --timeout --run-service-account",
        "--service-account --set-env-vars --env-vars-file --update-env-vars --remove-env-vars",
        "--trigger-http --trigger-topic --trigger-bucket --trigger-event-filters",
        "--trigger-event-filters-path-pattern --trigger-location --trigger-service-account",
        "--retry --ingress-settings --egress-settings --set-secrets --docker-repository",
        "--stage-bucket --security-level --serve-all-traffic-latest-revision --update-labels",
        "--vpc-connector",
    ),
    ("functions", "describe"): _flags("--region --v2"),
    # .../run/deploy, .../run/services/describe
    ("run", "deploy"): _flags(
        *_RUN_SHARED,
        "--allow-unauthenticated --no-allow-unauthenticated --concurrency --container",
        "--cpu-boost --no-cpu-boost --cpu-throttling --no-cpu-throttling --description",
        "--execution-environment --gpu-zonal-redundancy --no-gpu-zonal-redundancy --ingress",
        "--max --max-instances --min --min-instances --port --timeout --tag --no-traffic",
        "--liveness-probe --startup-probe --use-http2 --no-use-http2 --session-affinity",
        "--no-session-affinity",
    ),
    ("run", "services", "describe"): _flags("--region"),
    # .../run/jobs/deploy, .../run/jobs/execute
    ("run", "jobs", "deploy"): _flags(
        *_RUN_SHARED,
        "--tasks --parallelism --task-timeout --max-retries --execute-now --wait",
    ),
    ("run", "jobs", "execute"): _flags(
        "--region --wait --async --args --tasks --task-timeout --update-env-vars"
    ),
    # .../services/enable
    ("services", "enable"): _flags("--async"),
    # .../storage/buckets/{describe,create,add-iam-policy-binding}, .../storage/service-agent
    ("storage", "buckets", "describe"): _flags("--raw"),
    ("storage", "buckets", "create"): _flags(
        "--location --uniform-bucket-level-access --default-storage-class",
        "--public-access-prevention",
    ),
    ("storage", "buckets", "add-iam-policy-binding"): _flags(
        "--member --role --condition --condition-from-file"
    ),
    ("storage", "service-agent"): _flags("--authorize-cmek"),
    # .../pubsub/topics/{describe,create,add-iam-policy-binding}
    ("pubsub", "topics", "describe"): _flags(),
    ("pubsub", "topics", "create"): _flags("--labels --message-retention-duration"),
    ("pubsub", "topics", "add-iam-policy-binding"): _flags("--member --role --condition"),
    # .../pubsub/subscriptions/{describe,create,update,add-iam-policy-binding}
    ("pubsub", "subscriptions", "describe"): _flags(),
    ("pubsub", "subscriptions", "create"): _flags(*_PUSH_SUBSCRIPTION, "--topic"),
    ("pubsub", "subscriptions", "update"): _flags(*_PUSH_SUBSCRIPTION),
    ("pubsub", "subscriptions", "add-iam-policy-binding"): _flags("--member --role --condition"),
    # .../projects/{describe,add-iam-policy-binding}
    ("projects", "describe"): _flags(),
    ("projects", "add-iam-policy-binding"): _flags(
        "--member --role --condition --condition-from-file"
    ),
    # .../artifacts/repositories/{describe,create}, .../auth/configure-docker
    ("artifacts", "repositories", "describe"): _flags("--location"),
    ("artifacts", "repositories", "create"): _flags(
        "--repository-format --location --description --labels"
    ),
    ("auth", "configure-docker"): _flags(),
    # .../compute/firewall-rules/{describe,create}
    ("compute", "firewall-rules", "describe"): _flags(),
    ("compute", "firewall-rules", "create"): _flags(
        "--network --direction --allow --source-ranges --target-tags --priority --description"
    ),
    # .../compute/health-checks/{describe,create/http}
    ("compute", "health-checks", "describe"): _flags("--global --region"),
    ("compute", "health-checks", "create", "http"): _flags(
        "--global --region --port --request-path --check-interval --timeout",
        "--healthy-threshold --unhealthy-threshold --description",
    ),
    # .../compute/instance-templates/{describe,create}
    ("compute", "instance-templates", "describe"): _flags("--region"),
    ("compute", "instance-templates", "create"): _flags(
        "--machine-type --accelerator --maintenance-policy --image-family --image-project",
        "--image --boot-disk-size --boot-disk-type --network --subnet --tags --service-account",
        "--scopes --metadata --metadata-from-file --provisioning-model --labels --region",
    ),
    # .../compute/instance-groups/managed/{describe,create,update,resize,rolling-action/...}
    ("compute", "instance-groups", "managed", "describe"): _flags("--zone --region"),
    ("compute", "instance-groups", "managed", "create"): _flags(
        "--zone --region --template --size --health-check --initial-delay --base-instance-name"
    ),
    ("compute", "instance-groups", "managed", "update"): _flags(
        "--zone --region --health-check --initial-delay --clear-autohealing"
    ),
    ("compute", "instance-groups", "managed", "resize"): _flags("--zone --region --size"),
    ("compute", "instance-groups", "managed", "rolling-action", "start-update"): _flags(
        "--zone --region --version --max-surge --max-unavailable --type"
    ),
    # .../compute/instances/list
    ("compute", "instances", "list"): _flags("--filter --zones --limit --sort-by"),
}

DOCKER: dict[tuple[str, ...], frozenset[str]] = {
    ("build",): _flags("--file --tag --build-arg --platform --target"),
    ("push",): _flags(),
    ("login",): _flags("--username --password-stdin"),
}

AWS_WIDE = _flags("--region --endpoint-url --output --query --profile --no-paginate --debug")


def flags(argv: list[str]) -> list[str]:
    """The --flags of a command line (``--name=value`` gives ``--name``)."""
    return [arg.split("=", 1)[0] for arg in argv if arg.startswith("--")]


def positionals(argv: list[str], valued: frozenset[str] = frozenset()) -> list[str]:
    """Words that are not flags nor the value of a flag in ``valued`` (space-separated)."""
    words, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("--"):
            skip = arg in valued
        else:
            words.append(arg)
    return words


def _longest_key(
    table: dict[tuple[str, ...], frozenset[str]], words: list[str]
) -> tuple[str, ...] | None:
    keys = [k for k in table if tuple(words[: len(k)]) == k]
    return max(keys, key=len) if keys else None


@lru_cache(maxsize=1)
def _aws_driver():
    from awscli.clidriver import create_clidriver

    return create_clidriver()


def aws_flags(service: str, operation: str, waiter: str | None = None) -> frozenset[str] | None:
    """Documented flags of ``aws SERVICE OPERATION`` (``wait WAITER``), None if no such command."""
    services = _aws_driver()._get_command_table()
    if service not in services:
        return None
    ops = services[service]._get_command_table()
    command = ops.get(operation)
    if command is None:
        return None
    if waiter is not None:
        command = command.subcommand_table.get(waiter)
        if command is None:
            return None
    return frozenset("--" + name for name in command.arg_table)


def check_command(argv: list[str]) -> list[str]:
    """Problems with one printed command line: unknown command, undocumented flags."""
    tool, rest = argv[0], argv[1:]
    used = flags(rest)
    if tool == "gcloud":
        key = _longest_key(GCLOUD, positionals(rest))
        allowed = GCLOUD.get(key, frozenset()) | GCLOUD_WIDE if key else None
    elif tool == "docker":
        key = _longest_key(DOCKER, positionals(rest))
        allowed = DOCKER[key] if key else None
    elif tool == "aws":
        words = positionals(rest, AWS_WIDE)
        waiter = words[2] if len(words) > 2 and words[1] == "wait" else None
        found = aws_flags(words[0], words[1], waiter) if len(words) > 1 else None
        allowed = found | AWS_WIDE if found is not None else None
        key = tuple(words[:3] if waiter else words[:2])
    else:
        return [f"unexpected tool: {argv}"]
    if allowed is None:
        return [f"no documented command for: {' '.join(argv)}"]
    return [
        f"{tool} {' '.join(key)}: undocumented flag {flag}" for flag in used if flag not in allowed
    ]
