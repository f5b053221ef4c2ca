#!/usr/bin/env bash
# Drift against the emulator (issue 21): dev's langgraph-platform database, its security
# group and VPC applied to moto; then a security-group rule, a tag and an instance setting
# changed with boto3 (as with the AWS CLI). `keel drift` reports all three, the security
# group as security, and exits 3; reverted, it reports none and exits 0.
#   scripts/tests/drift-moto.sh        (from the repository root, after cargo build)
cd "$(dirname "$0")/../.."
. scripts/tests/moto-lib.sh

project="$WORK/project"
mkdir -p "$project"
cp -r environments generated "$project"/
root="$project/generated/dev/langgraph-platform/terraform"
moto_override "$root"
start_moto 123456789012

# Apply the part of the stack the test changes (and what it needs): the database instance,
# its security group, the VPC.
tf "$root" init -input=false >/dev/null
tf "$root" apply -input=false -lock=false -auto-approve \
    -target=aws_db_instance.main -target=aws_security_group.database -target=aws_vpc.main > "$WORK/apply.txt"
grep '^Apply complete' "$WORK/apply.txt"
# moto reads some attributes back otherwise than the provider wrote them (a parameter
# group's parameters, a role's managed policies): accepted into the state once, as
# `terraform apply -refresh-only` accepts drift, so the baseline is what the emulator reads.
settled=
for _ in 1 2 3; do
    if terraform -chdir="$root" plan -refresh-only -detailed-exitcode -input=false -lock=false > "$WORK/settle.txt"; then
        settled=yes; break
    fi
    tf "$root" apply -refresh-only -input=false -lock=false -auto-approve > /dev/null
done
[ -n "$settled" ] || { cat "$WORK/settle.txt"; fail "moto's read-back did not settle after 3 refresh-only applies"; }

drift() { # drift FORMAT: keel drift's output; its exit code in $code
    code=0
    "$KEEL" --root "$project" drift dev --stack langgraph-platform --format "$1" > "$WORK/drift.out" 2> "$WORK/drift.err" || code=$?
    cat "$WORK/drift.out"
}

drift text
[ "$code" = 0 ] || { cat "$WORK/drift.err"; fail "drift right after the apply (exit $code)"; }
ok "no drift after the apply"

"$PY" - <<'PY'
import boto3
ec2, rds = boto3.client("ec2"), boto3.client("rds")
sg = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["lgp-dev-database"]}])["SecurityGroups"][0]["GroupId"]
ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["lgp-dev-vpc"]}])["Vpcs"][0]["VpcId"]
ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Owner", "Value": "someone-by-hand"}])
db = rds.describe_db_instances()["DBInstances"][0]
with open("/dev/stderr", "w") as err:
    print("backup retention was", db["BackupRetentionPeriod"], file=err)
rds.modify_db_instance(DBInstanceIdentifier=db["DBInstanceIdentifier"], BackupRetentionPeriod=db["BackupRetentionPeriod"] + 2, ApplyImmediately=True)
open("/dev/stdout", "w").write(str(db["BackupRetentionPeriod"]))
PY
ok "changed an ingress rule, a tag and the database's backup retention with boto3"

drift text
[ "$code" = 3 ] || { cat "$WORK/drift.err"; fail "expected exit 3 for drift, found $code"; }
drift json > /dev/null
"$PY" - "$WORK/drift.out" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
changes = {c["address"]: c for s in report["stacks"] for c in s["changes"]}
sg = changes.get("aws_security_group.database")
assert sg and sg["class"] == "security", sg
vpc = changes.get("aws_vpc.main")
assert vpc and any(a["path"].startswith("tags") for a in vpc["attributes"]), vpc
db = changes.get("aws_db_instance.main")
assert db and any(a["path"] == "backup_retention_period" for a in db["attributes"]), db
print("drift json: security group", sg["class"], "| vpc", vpc["class"], "cosmetic" if vpc["cosmetic"] else "",
      "| db", [a["path"] for a in db["attributes"]])
PY
ok "keel drift reported all three, the security group as security (exit 3)"

"$PY" - <<'PY'
import boto3
ec2, rds = boto3.client("ec2"), boto3.client("rds")
sg = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["lgp-dev-database"]}])["SecurityGroups"][0]["GroupId"]
ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["lgp-dev-vpc"]}])["Vpcs"][0]["VpcId"]
ec2.delete_tags(Resources=[vpc], Tags=[{"Key": "Owner"}])
db = rds.describe_db_instances()["DBInstances"][0]
rds.modify_db_instance(DBInstanceIdentifier=db["DBInstanceIdentifier"], BackupRetentionPeriod=db["BackupRetentionPeriod"] - 2, ApplyImmediately=True)
PY
drift text
[ "$code" = 0 ] || { cat "$WORK/drift.err"; fail "drift after the revert (exit $code)"; }
ok "reverted: keel drift reports none (exit 0)"
echo "drift-moto: passed"
