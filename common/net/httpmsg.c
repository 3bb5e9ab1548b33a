#include "ccgate/httpmsg.h"

#include <string.h>

const char *cg_httpmsg_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

int cg_httpmsg_response(struct cg_buf *out, int status, const char *content_type, const char *body,
                        size_t body_len, int close)
{
    return cg_httpmsg_response_ex(out, status, content_type, NULL, body, body_len, close);
}

int cg_httpmsg_response_ex(struct cg_buf *out, int status, const char *content_type,
                           const char *headers, const char *body, size_t body_len, int close)
{
    int rc = cg_buf_printf(out,
                           "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                           "Cache-Control: no-store\r\n%s%s\r\n",
                           status, cg_httpmsg_reason(status), content_type, body_len,
                           headers != NULL ? headers : "", close ? "Connection: close\r\n" : "");
    if (rc == 0)
        rc = cg_buf_append(out, body, body_len);
    return rc;
}

int cg_httpmsg_request_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > CG_REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 (ch != '\0' && strchr("-_.:+/=@", ch) != NULL);
        if (!ok)
            return 0;
    }
    return 1;
}

int cg_httpmsg_openai_path(const char *target)
{
    return strncmp(target, "/v1", 3) == 0 &&
           (target[3] == '\0' || target[3] == '/' || target[3] == '?');
}
