/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The pure parts of `doctor`: text and JSON in, findings out. No descriptors, no clock, no
 * logging, so the unit tests drive them with strings.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

/* tailscale's claimed fwmark byte (tsconst/linuxfw.go LinuxFwmarkMask). */
#define DOCTOR_TS_MARK_MASK UINT32_C(0xff0000)

/* "0x10000", "65536" -> 32-bit value; -EINVAL otherwise. */
int doctor_parse_mark(const char *s, uint32_t *ret);

/* iptables-save text -> "TABLE CHAIN: RULE" for every rule outside ts-* chains whose MARK,
 * CONNMARK or mark match touches a bit of 0xff0000. *ret is a NULL-terminated vector (empty when
 * nothing was found). */
int doctor_scan_iptables_save(const char *text, char ***ret);
/* `nft -j list ruleset` -> "FAMILY TABLE CHAIN handle N: meta|ct mark ..." likewise. -EINVAL on
 * JSON that is not an nftables document. */
int doctor_scan_nft_json(const char *json, size_t len, char ***ret);

/* resolv.conf text -> its nameserver and search entries (vectors, never NULL on success). */
int doctor_resolv_conf_parse(const char *text, char ***ret_nameservers, char ***ret_search);
/* A nameserver the kubelet must not hand to pods: loopback or tailscale's 100.100.100.100 /
 * fd7a:115c:a1e0::53 (MagicDNS answers only on the host). */
bool doctor_nameserver_is_bad(const char *ns);

/* Bytes of encapsulation Calico adds per mode: vxlan 50, ipip 20, wireguard 60, bird 0;
 * NULL (k0s's default mode) is vxlan. -EINVAL for an unknown mode. */
int doctor_calico_overhead(const char *mode);

/* libyaml document helpers: load (first document) and look up a dotted path of mapping keys
 * ("spec.network.calico.mtu"). */
int doctor_yaml_load(const char *text, size_t len, yaml_document_t *ret);
yaml_node_t *doctor_yaml_get(yaml_document_t *doc, const char *path);
/* The scalar's value, or NULL when node is NULL or not a scalar. */
const char *doctor_yaml_scalar(const yaml_node_t *node);
/* 1-based line of node, 0 for NULL. */
unsigned doctor_yaml_line(const yaml_node_t *node);

/* The first `server: URL` of a kubeconfig text, malloc'd, or -ENOENT. */
int doctor_kubeconfig_server(const char *text, char **ret);
/* A k0s join token (base64 of a gzip'd kubeconfig) -> that kubeconfig's server URL. */
int doctor_token_server(const char *token, size_t len, char **ret);
/* "https://100.64.0.1:6443/x" -> host "100.64.0.1" (brackets dropped for IPv6) and port (0 when
 * absent). */
int doctor_url_host_port(const char *url, char **ret_host, unsigned *ret_port);

/* A systemd unit's text -> the words of ExecStart= (the last one wins) and the NAME=value pairs
 * of every Environment= line. Quotes are honoured; specifiers are not expanded. */
int doctor_unit_parse(const char *text, char ***ret_exec, char ***ret_env);

/* Whether a is inside prefix/len ("10.244.0.0/16"); false for bad input or another family. */
bool doctor_address_in_cidr(const char *a, const char *cidr);
