################################################################################
# DNS and TLS: the environment's host names live in an existing public hosted zone; ExternalDNS
# (add-ons stage, limited to this zone) creates the records from the Ingresses, and one wildcard
# certificate, validated through the same zone, serves every ALB of the environment.
################################################################################

data "aws_route53_zone" "this" {
  name         = var.dns_zone_name
  private_zone = false
}

resource "aws_acm_certificate" "this" {
  domain_name       = "*.${local.dns_base}"
  validation_method = "DNS"

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "certificate_validation" {
  for_each = {
    for option in aws_acm_certificate.this.domain_validation_options : option.domain_name => {
      name   = option.resource_record_name
      type   = option.resource_record_type
      record = option.resource_record_value
    }
  }

  zone_id         = data.aws_route53_zone.this.zone_id
  name            = each.value.name
  type            = each.value.type
  records         = [each.value.record]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "this" {
  certificate_arn         = aws_acm_certificate.this.arn
  validation_record_fqdns = [for record in aws_route53_record.certificate_validation : record.fqdn]
}
