/*
 * pbcheck.c — see pbcheck.h.  A small reader of the protobuf wire format
 * (varint keys; wire types 0, 1, 2 and 5; groups are refused), guided by
 * protobuf-c's descriptors; it decodes nothing but lengths.
 */
#include "runtime/pbcheck.h"

#include "runtime/base/utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define PBCHECK_DEPTH 32
#define PATH_MAX_ 256

static int varint(const uint8_t *p, size_t n, size_t *at, uint64_t *out) {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*at >= n) return -1;
        uint8_t b = p[(*at)++];
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

static int walk(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t n, char *path, size_t plen,
                int depth, llmos_error_t *err) {
    if (depth > PBCHECK_DEPTH) return llmos_error_set(err, LLMOS_EFORMAT, "%s: messages nested too deep", path);
    unsigned counts[64] = {0}; /* occurrences of the first 64 fields, for [i] in paths */
    size_t at = 0;
    while (at < n) {
        uint64_t key, v;
        size_t start = at;
        if (varint(p, n, &at, &key) != 0)
            return llmos_error_set(err, LLMOS_EFORMAT, "%s: bad field key at byte %zu", plen ? path : "message", start);
        uint32_t num = (uint32_t)(key >> 3);
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(desc, (unsigned)num);
        switch (key & 7) {
        case 0:
            if (varint(p, n, &at, &v) != 0) return llmos_error_set(err, LLMOS_EFORMAT, "%s: bad varint", path);
            break;
        case 1:
            if (n - at < 8) return llmos_error_set(err, LLMOS_EFORMAT, "%s: truncated fixed64", path);
            at += 8;
            break;
        case 5:
            if (n - at < 4) return llmos_error_set(err, LLMOS_EFORMAT, "%s: truncated fixed32", path);
            at += 4;
            break;
        case 2: {
            if (varint(p, n, &at, &v) != 0 || v > n - at)
                return llmos_error_set(err, LLMOS_EFORMAT, "%s: a length-delimited field runs past the end",
                                       plen ? path : "message");
            const uint8_t *d = p + at;
            at += (size_t)v;
            if (!f || (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)) break;
            unsigned idx = 0;
            size_t fi = (size_t)(f - desc->fields);
            if (fi < 64) idx = counts[fi]++;
            size_t sub = plen;
            int w = f->label == PROTOBUF_C_LABEL_REPEATED
                        ? snprintf(path + plen, PATH_MAX_ - plen, "%s%s[%u]", plen ? "." : "", f->name, idx)
                        : snprintf(path + plen, PATH_MAX_ - plen, "%s%s", plen ? "." : "", f->name);
            if (w > 0) sub = plen + (size_t)w < PATH_MAX_ ? plen + (size_t)w : PATH_MAX_ - 1;
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                const uint8_t *nul = memchr(d, 0, (size_t)v);
                if (nul) return llmos_error_set(err, LLMOS_EINVAL, "%s contains a NUL byte (at byte %zu)", path, (size_t)(nul - d));
                size_t bad = llmos_utf8_check(d, (size_t)v);
                if (bad < v) return llmos_error_set(err, LLMOS_EINVAL, "%s is not valid UTF-8 (at byte %zu)", path, bad);
            } else {
                int rc = walk((const ProtobufCMessageDescriptor *)f->descriptor, d, (size_t)v, path, sub, depth + 1, err);
                if (rc) return rc;
            }
            path[plen] = 0;
            break;
        }
        default:
            return llmos_error_set(err, LLMOS_EFORMAT, "%s: wire type %u (groups) is not supported",
                                   plen ? path : "message", (unsigned)(key & 7));
        }
    }
    return 0;
}

int rt_pb_check_strings(const ProtobufCMessageDescriptor *desc, const void *data, size_t len, llmos_error_t *err) {
    char path[PATH_MAX_] = "";
    return walk(desc, data, len, path, 0, 0, err);
}
