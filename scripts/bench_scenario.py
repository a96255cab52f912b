"""Builds data-plane VPCs in moto for scripts/bench.sh, through the EC2 API like
tests/common/scenario.rs does: per VPC 3 public and 3 private subnets, an IGW, a NAT gateway
per AZ, a route table per private subnet, an S3 gateway endpoint and three interface
endpoints behind a security group.

Usage: bench_scenario.py ENDPOINT_URL TOTAL_VPCS
Creates VPCs until us-east-1 holds TOTAL_VPCS VPCs (moto's default VPC included), so it can
be called again with a larger total to grow the same account.
"""

import sys

import boto3

REGION = "us-east-1"


def tags(kind, name):
    return [{"ResourceType": kind, "Tags": [{"Key": "Name", "Value": name}]}]


def build_vpc(ec2, name):
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=tags("vpc", name))["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(VpcId=vpc, InternetGatewayId=igw)
    public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    sg = ec2.create_security_group(GroupName=f"{name}-endpoints", Description="endpoints", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                        "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}],
    )
    private_subnets, private_rts = [], []
    for i, letter in enumerate("abc"):
        az = f"{REGION}{letter}"
        public = ec2.create_subnet(VpcId=vpc, AvailabilityZone=az, CidrBlock=f"10.0.{192 + i}.0/28",
                                   TagSpecifications=tags("subnet", f"{name}-public-{letter}"))["Subnet"]["SubnetId"]
        ec2.associate_route_table(RouteTableId=public_rt, SubnetId=public)
        private = ec2.create_subnet(VpcId=vpc, AvailabilityZone=az, CidrBlock=f"10.0.{64 * i}.0/18",
                                    TagSpecifications=tags("subnet", f"{name}-private-{letter}"))["Subnet"]["SubnetId"]
        eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=public, AllocationId=eip)["NatGateway"]["NatGatewayId"]
        rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
        ec2.associate_route_table(RouteTableId=rt, SubnetId=private)
        private_subnets.append(private)
        private_rts.append(rt)
    ec2.create_vpc_endpoint(VpcId=vpc, VpcEndpointType="Gateway",
                            ServiceName=f"com.amazonaws.{REGION}.s3", RouteTableIds=private_rts)
    for service in ["logs", "ecr.dkr", "ec2"]:
        ec2.create_vpc_endpoint(VpcId=vpc, VpcEndpointType="Interface",
                                ServiceName=f"com.amazonaws.{REGION}.{service}",
                                SubnetIds=private_subnets, SecurityGroupIds=[sg], PrivateDnsEnabled=True)


def main():
    endpoint, total = sys.argv[1], int(sys.argv[2])
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    have = len(ec2.describe_vpcs()["Vpcs"])
    for n in range(have, total):
        build_vpc(ec2, f"bench-{n}")
    vpcs = ec2.describe_vpcs()["Vpcs"]
    subnets = ec2.describe_subnets()["Subnets"]
    print(f"bench_scenario: {REGION} holds {len(vpcs)} VPCs and {len(subnets)} subnets")


if __name__ == "__main__":
    main()
