#!/usr/bin/env bash
# Adoption against the emulator (issue 21): a VPC and a subnet made with boto3 (as the AWS
# CLI would), known to an older Terraform root that imported them; `keel adopt` proposes the
# entries from that root's `terraform show -json`; with them in dev.yaml, the platform root
# plans "2 to import, ..., 0 to destroy", and an apply adopts both with their ids unchanged.
#   scripts/tests/adopt-moto.sh        (from the repository root, after cargo build)
cd "$(dirname "$0")/../.."
. scripts/tests/moto-lib.sh

project="$WORK/project"
mkdir -p "$project"
cp -r environments generated "$project"/
start_moto 123456789012

# The existing network, made outside keel (dev platform's VPC and first private subnet).
read -r vpc subnet < <("$PY" - <<'PY'
import boto3
ec2 = boto3.client("ec2", region_name="us-east-1")
vpc = ec2.create_vpc(CidrBlock="10.120.0.0/16",
                     TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "eks-dev-vpc"}]}])["Vpc"]["VpcId"]
subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.120.128.0/20", AvailabilityZone="us-east-1a",
                           TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": "eks-dev-private-a"}]}])["Subnet"]["SubnetId"]
print(vpc, subnet)
PY
)
ok "created $vpc and $subnet with boto3"

# The team's older Terraform root, which imported them: its state is what keel adopt reads.
legacy="$WORK/legacy"
mkdir -p "$legacy"
cat > "$legacy/main.tf.json" <<JSON
{
  "provider": {"aws": {"region": "us-east-1", "access_key": "testing", "secret_key": "testing",
    "skip_credentials_validation": true, "skip_metadata_api_check": true, "skip_region_validation": true}},
  "resource": {
    "aws_vpc": {"network": {"cidr_block": "10.120.0.0/16", "tags": {"Name": "eks-dev-vpc"}}},
    "aws_subnet": {"app_a": {"vpc_id": "\${aws_vpc.network.id}", "cidr_block": "10.120.128.0/20",
      "availability_zone": "us-east-1a", "tags": {"Name": "eks-dev-private-a"}}}
  },
  "import": [{"to": "aws_vpc.network", "id": "$vpc"}, {"to": "aws_subnet.app_a", "id": "$subnet"}]
}
JSON
tf "$legacy" init -input=false >/dev/null
tf "$legacy" apply -input=false -auto-approve >/dev/null
terraform -chdir="$legacy" show -json > "$WORK/legacy.json"

# keel adopt proposes both entries, each by its identifying attributes.
"$KEEL" --root "$project" adopt dev --from "$WORK/legacy.json" --stack platform > "$WORK/proposal.yaml"
cat "$WORK/proposal.yaml"
grep -q "^    aws_vpc.main: $vpc  # aws_vpc.network, by cidr_block, tags.Name$" "$WORK/proposal.yaml" || fail "no proposal for aws_vpc.main"
grep -q "^    aws_subnet.private_a: $subnet  # aws_subnet.app_a, by cidr_block, availability_zone, tags.Name$" "$WORK/proposal.yaml" || fail "no proposal for aws_subnet.private_a"
ok "keel adopt proposed aws_vpc.main and aws_subnet.private_a"

# Into the environment file, then synth: the import blocks.
grep -v '^#' "$WORK/proposal.yaml" | sed 's/  #.*$//' >> "$project/environments/dev.yaml"
"$KEEL" --root "$project" synth dev --stack platform
imports="$project/generated/dev/platform/terraform/imports.tf.json"
[ -f "$imports" ] || fail "synth wrote no imports.tf.json"
cat "$imports"

# Plan: 2 to import, 0 to destroy.
root=$(root_copy "$project/generated/dev/platform/terraform")
tf "$root" init -input=false >/dev/null
tf "$root" plan -input=false -lock=false -out="$WORK/plan" > "$WORK/plan.txt" || { cat "$WORK/plan.txt"; fail "plan failed"; }
summary=$(grep '^Plan:' "$WORK/plan.txt")
echo "$summary"
case "$summary" in
    "Plan: 2 to import, "*", 0 to destroy.") ok "plan: 2 to import, 0 to destroy" ;;
    *) fail "expected 2 to import and 0 to destroy, found: $summary" ;;
esac

# Apply the two: Terraform adopts them, with their ids.
tf "$root" apply -input=false -lock=false -auto-approve -target=aws_vpc.main -target=aws_subnet.private_a > "$WORK/apply.txt" || { cat "$WORK/apply.txt"; fail "apply failed"; }
grep '^Apply complete' "$WORK/apply.txt"
grep -q "^Apply complete! Resources: 2 imported," "$WORK/apply.txt" || fail "apply did not import both"
[ "$(terraform -chdir="$root" state show -no-color aws_vpc.main | sed -n 's/^ *id *= "\(.*\)"$/\1/p')" = "$vpc" ] || fail "aws_vpc.main is not $vpc"
[ "$(terraform -chdir="$root" state show -no-color aws_subnet.private_a | sed -n 's/^ *id *= "\(.*\)"$/\1/p')" = "$subnet" ] || fail "aws_subnet.private_a is not $subnet"
ok "apply adopted $vpc as aws_vpc.main and $subnet as aws_subnet.private_a"
echo "adopt-moto: passed"
