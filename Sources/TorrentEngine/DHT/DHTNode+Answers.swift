import BitTorrent

/// Answering other nodes' queries: ping, find_node, get_peers with a write token,
/// announce_peer checked against it. Answers stay within `maxReplyFactor` × the query's
/// size (and `maxReplySize`), so we cannot be used to amplify a flood.
extension DHTNode {
    mutating func answer(_ query: KRPCQuery, of message: KRPCMessage, size: Int, from sender: CompactPeer, now: Int64) {
        guard !configuration.readOnly, query.sender != id, limiter.allow(sender.address, now: now) else { return }
        if !message.readOnly { heard(DHTNodeInfo(id: query.sender, endpoint: sender), replied: false, now: now) }
        var want = query.want
        if want.isEmpty { want = sender.address.count == 4 ? .ipv4 : .ipv6 }
        var response = KRPCResponse(sender: id)
        switch query.method {
        case .ping:
            break
        case .findNode(let target):
            addNodes(close: target, want: want, to: &response, now: now)
        case .getPeers(let infoHash):
            response.token = tokens.token(for: sender.address)
            response.values = store.peers(infoHash, ipv6: sender.address.count == 16, limit: Self.maxValuesPerReply, now: now,
                                         using: &random)
            if response.values.isEmpty { addNodes(close: infoHash, want: want, to: &response, now: now) }
        case .announcePeer(let infoHash, let port, let implied, let token):
            guard tokens.isValid(token, for: sender.address),
                  let peer = CompactPeer(address: sender.address, port: implied ? sender.port : port) else {
                reply(.error(code: KRPCMessage.protocolError, message: "bad token"), to: message, from: sender)
                return
            }
            store.announce(infoHash, peer: peer, now: now)
        case .unknown:
            reply(.error(code: KRPCMessage.methodUnknown, message: "method unknown"), to: message, from: sender)
            return
        }
        let limit = min(Self.maxReplySize, size * Self.maxReplyFactor)
        while reply(.response(response), to: message, from: sender, limit: limit) == false {
            // Too large: fewer peers first, then fewer nodes; an empty answer always fits.
            if !response.values.isEmpty {
                response.values.removeLast(max(1, response.values.count / 4))
            } else if !response.nodes6.isEmpty {
                response.nodes6.removeLast()
            } else if !response.nodes.isEmpty {
                response.nodes.removeLast()
            } else {
                return
            }
        }
    }

    private func addNodes(close target: Digest20, want: KRPCQuery.Want, to response: inout KRPCResponse, now: Int64) {
        if want.contains(.ipv4) { response.nodes = table4.closest(to: target, now: now) }
        if want.contains(.ipv6) && configuration.ipv6 { response.nodes6 = table6.closest(to: target, now: now) }
    }

    /// Queues the answer unless it is larger than `limit`; false then.
    @discardableResult
    private mutating func reply(_ body: KRPCMessage.Body, to query: KRPCMessage, from sender: CompactPeer,
                                limit: Int = DHTNode.maxReplySize) -> Bool {
        let bytes = KRPCMessage(transaction: query.transaction, body: body, requesterAddress: sender,
                                version: Self.version).encoded
        guard bytes.count <= limit else { return false }
        outputs.append(.send(bytes, to: sender))
        return true
    }
}
