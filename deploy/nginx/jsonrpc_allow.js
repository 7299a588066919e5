/*
 * jsonrpc_allow.js: nginx njs allow-list of JSON-RPC 2.0 methods (hardened.conf).
 *
 * js_content handler of "location = /": parses the request body (one call or a
 * batch), refuses with a JSON-RPC error when a call is malformed or names a method
 * outside $jsonrpc_allow, and otherwise hands the untouched body to the node
 * through an internal redirect to @node. A batch is forwarded whole or refused
 * whole: the answer then holds one error per call, by id, so a client sees which
 * call was refused and that the others did not run.
 *
 * Written for njs 0.7.9 (Debian 12): ES5 only (var, no for...of, no arrow functions).
 *
 * Example (hardened.conf):
 *     js_import jsonrpc from jsonrpc_allow.js;
 *     js_var $jsonrpc_allow "eth_chainId eth_call net_*";
 *     js_var $jsonrpc_max_batch 100;
 *     js_var $jsonrpc_refusal;
 *     location = / { js_content jsonrpc.check; }
 *     location @node { proxy_pass http://node; }
 */

/* The codes of pervasive's own gateway (pervasive.gateway.jsonrpc), so devices see one set. */
var PARSE_ERROR = -32700;
var INVALID_REQUEST = -32600;
var NOT_ALLOWED = -32003;

function isSeparator(text, at) {
    if (at < 0 || at >= text.length) {
        return true;
    }
    var c = text.charAt(at);
    return c === ' ' || c === ',' || c === '\n' || c === '\t' || c === '\r';
}

/*
 * Whether method is named in allow (names separated by spaces, commas or new lines)
 * or falls under one of its "namespace_*" wildcards. The list is scanned in place:
 * njs builds a fresh VM per request, and splitting it with a regular expression
 * every time costs more than the rest of the check.
 */
function isAllowed(method, allow) {
    for (var i = 0; i < method.length; i++) {
        if (isSeparator(method, i) || method.charAt(i) === '*') {
            return false;
        }
    }
    if (method.length === 0) {
        return false;
    }
    var at = allow.indexOf(method);
    while (at >= 0) {
        if (isSeparator(allow, at - 1) && isSeparator(allow, at + method.length)) {
            return true;
        }
        at = allow.indexOf(method, at + 1);
    }
    var star = allow.indexOf('*');
    while (star >= 0) {
        var begin = star;
        while (!isSeparator(allow, begin - 1)) {
            begin--;
        }
        if (isSeparator(allow, star + 1) && method.indexOf(allow.substring(begin, star)) === 0) {
            return true;
        }
        star = allow.indexOf('*', star + 1);
    }
    return false;
}

/* The allow-list for a refusal's message (the slow path). */
function listed(allow) {
    return allow.split(/[\s,]+/).filter(function (word) { return word.length > 0; }).join(', ');
}

function errorObject(id, code, message) {
    var known = typeof id === 'string' || typeof id === 'number';
    return {jsonrpc: '2.0', id: known ? id : null, error: {code: code, message: message}};
}

/* Null when the call may go to the node; otherwise [code, reason, message]. */
function judge(call, allow) {
    if (call === null || typeof call !== 'object' || Array.isArray(call)
            || call.jsonrpc !== '2.0' || typeof call.method !== 'string') {
        return [INVALID_REQUEST, 'invalid_request',
                'not a JSON-RPC 2.0 call: send {"jsonrpc":"2.0","id":1,"method":"...","params":[]}'];
    }
    if (!isAllowed(call.method, allow)) {
        return [NOT_ALLOWED, 'method_not_allowed',
                'method ' + call.method + ' is not allowed here; allowed: ' + listed(allow)];
    }
    return null;
}

function refuse(r, status, reason, answer) {
    r.variables.jsonrpc_refusal = reason;
    r.headersOut['Content-Type'] = 'application/json';
    r.return(status, JSON.stringify(answer) + '\n');
}

function statusOf(verdict) {
    return verdict[0] === NOT_ALLOWED ? 403 : 400;
}

function checkBatch(r, calls, allow) {
    var most = parseInt(r.variables.jsonrpc_max_batch, 10) || 100;
    if (calls.length === 0) {
        refuse(r, 400, 'empty_batch',
               errorObject(null, INVALID_REQUEST, 'empty batch: send at least one call'));
        return false;
    }
    if (calls.length > most) {
        refuse(r, 400, 'batch_too_large',
               errorObject(null, INVALID_REQUEST, 'a batch of ' + calls.length
                           + ' calls; send at most ' + most + ' at a time'));
        return false;
    }
    var verdicts = [];
    var first = -1;
    for (var i = 0; i < calls.length; i++) {
        verdicts.push(judge(calls[i], allow));
        if (first < 0 && verdicts[i] !== null) {
            first = i;
        }
    }
    if (first < 0) {
        return true;
    }
    var answers = [];
    for (var j = 0; j < calls.length; j++) {
        var call = calls[j];
        var id = call !== null && typeof call === 'object' ? call.id : null;
        if (verdicts[j] !== null) {
            answers.push(errorObject(id, verdicts[j][0], verdicts[j][2]));
        } else {
            answers.push(errorObject(id, NOT_ALLOWED, 'not run: the call at index ' + first
                                     + ' of this batch is refused, and so is the batch'));
        }
    }
    refuse(r, statusOf(verdicts[first]), verdicts[first][1], answers);
    return false;
}

function check(r) {
    var body;
    try {
        body = JSON.parse(r.requestText);
    } catch (e) {
        refuse(r, 400, 'parse_error',
               errorObject(null, PARSE_ERROR, 'parse error: the body is not JSON; '
                           + 'send a JSON-RPC 2.0 request'));
        return;
    }
    var allow = String(r.variables.jsonrpc_allow || '');
    if (Array.isArray(body)) {
        if (!checkBatch(r, body, allow)) {
            return;
        }
    } else {
        var verdict = judge(body, allow);
        if (verdict !== null) {
            var id = body !== null && typeof body === 'object' ? body.id : null;
            refuse(r, statusOf(verdict), verdict[1], errorObject(id, verdict[0], verdict[2]));
            return;
        }
    }
    r.internalRedirect('@node');
}

export default {check: check};
