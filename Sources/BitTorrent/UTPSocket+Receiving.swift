extension UTPSocket {
    /// Dupacks (or later packets selectively acked) that declare a packet lost.
    static let lossThreshold = 3

    /// A packet for this connection (the endpoint matched its connection id and sender).
    public func receive(_ packet: UTPPacket, now: Int64) {
        guard state != .closed else { return }
        switch packet.kind {
        case .reset:
            finish(.reset)
            return
        case .syn:
            // The peer did not get our STATE: answer its SYN again; any other SYN is stale.
            if state != .synSent, packet.seq == synSeq, packet.connectionID == sendID {
                noteTimestamp(packet, now: now)
                sendState(now: now)
            }
            return
        case .state, .data, .fin:
            break
        }
        if state == .synSent {
            // Only the STATE acking our SYN opens the connection.
            guard packet.kind == .state, packet.ack == lastAcked else { return }
            ackNr = packet.seq &- 1
            state = .connected
            retransmitDeadline = nil
            congestion.rttSample(now - lastSent)
            peerSays(datagramSize: packet.datagramSize)
            events.append(.connected)
        } else if state == .synReceived {
            guard packet.kind != .state || packet.ack == lastAcked else { return }
            if packet.kind != .state {
                state = .connected
                events.append(.connected)
            }
        }
        noteTimestamp(packet, now: now)
        peerWindow = Int(packet.window)
        processAck(packet, now: now)
        guard state != .closed else { return }
        if packet.kind == .data || packet.kind == .fin {
            received(packet, now: now)
        }
        flush(now: now)
    }

    /// The caller's batch of datagrams is done: owed acks go out now.
    public func drained(now: Int64) {
        guard state != .closed, state != .synSent else { return }
        if acksOwed > 0 || ackNow { sendState(now: now) }
    }

    // MARK: Acks of what we sent

    private func processAck(_ packet: UTPPacket, now: Int64) {
        let advance = UTPSequence.distance(from: lastAcked, to: packet.ack)
        let outstanding = UTPSequence.distance(from: lastAcked, to: seqNext &- 1)
        // An ack of what we never sent, or from before the last one, is stale.
        guard advance >= 0, advance <= outstanding else { return }
        let flightBefore = sent.flightBytes
        var ackedBytes = 0
        var newestSentAt = Int64.min
        // One round-trip sample per ack, from the most recently sent packet it newly
        // covers, and only if that packet left after our last retransmission: a packet
        // sent before a loss may have arrived long before its ack could say so (blocked
        // behind the hole cumulatively, or beyond the reach of the selective-ack mask),
        // and would report the whole repair as its round trip; the estimate (and with it
        // the timeout and the pacing rate) then runs away: measured against a stock
        // libtorrent leecher, 57 s of "RTT" and a sender paced at bytes per second.
        var newestOriginal = Int64.min
        var seq = lastAcked
        while seq != packet.ack {
            seq &+= 1
            guard let entry = sent.remove(seq) else { continue }
            if !entry.sacked { ackedBytes += entry.payload.count }
            newestSentAt = max(newestSentAt, entry.sentAt)
            if entry.transmissions == 1 && !entry.sacked { newestOriginal = max(newestOriginal, entry.sentAt) }
            if entry.kind == .fin { finAcked(now: now) }
        }
        lastAcked = packet.ack
        var newSacks = 0
        if let mask = packet.selectiveAck {
            for bit in 0..<(mask.count * 8) where mask[bit / 8] & (1 << UInt8(bit % 8)) != 0 {
                let sacked = packet.ack &+ 2 &+ UInt16(bit)
                guard UTPSequence.distance(from: sacked, to: seqNext) > 0,
                      let entry = sent.markSacked(sacked) else { continue }
                newSacks += 1
                if !entry.lost { ackedBytes += entry.payload.count }
                newestSentAt = max(newestSentAt, entry.sentAt)
                if entry.transmissions == 1 { newestOriginal = max(newestOriginal, entry.sentAt) }
            }
        }
        if newestOriginal != .min, newestOriginal > lastResentAt { congestion.rttSample(now - newestOriginal) }
        if packet.timestampDifference != 0 { congestion.delaySample(packet.timestampDifference, now: now) }
        if advance > 0 {
            duplicateAcks = 0
            consecutiveTimeouts = 0
        } else if packet.kind == .state, sent.count > 0, newSacks == 0, packet.selectiveAck == nil {
            duplicateAcks += 1
            if duplicateAcks == Self.lossThreshold, let first = sent[lastAcked &+ 1], first.sentAt < now - congestion.rtt,
               sent.markLost(first.seq) {
                congestion.lost(now: now)
            }
        }
        if packet.selectiveAck != nil { detectLosses(newestSentAt: newestSentAt, now: now) }
        congestion.acked(ackedBytes, flight: flightBefore)
        if ackedBytes > 0 || advance > 0 {
            retransmitDeadline = sent.count > 0 ? now + congestion.timeout : nil
        }
    }

    /// With selective acks: a packet is lost once `lossThreshold` packets after it were
    /// acked and one of them was sent after it (so a packet sent again is not declared
    /// lost by acks of packets that left before it).
    private func detectLosses(newestSentAt: Int64, now: Int64) {
        let span = UTPSequence.distance(from: lastAcked, to: seqNext &- 1)
        guard span > 1 else { return }
        var sackedAbove = 0
        var anyLost = false
        var offset = min(span, UTPPacket.maxSelectiveAckBytes * 8 + 1)
        while offset >= 1 {
            let seq = lastAcked &+ UInt16(offset)
            if let entry = sent[seq] {
                if entry.sacked {
                    sackedAbove += 1
                } else if sackedAbove >= Self.lossThreshold, !entry.lost, entry.sentAt < newestSentAt {
                    anyLost = sent.markLost(seq) || anyLost
                }
            }
            offset -= 1
        }
        if anyLost { congestion.lost(now: now) }
    }

    /// Our FIN is acked: closed once the peer's FIN is in too (or after `linger`).
    private func finAcked(now: Int64) {
        finAckedAt = now
        if endDelivered { finish(.local) }
    }

    // MARK: Data from the peer

    private func received(_ packet: UTPPacket, now: Int64) {
        if packet.kind == .fin, eofSeq == nil { eofSeq = packet.seq }
        if let eof = eofSeq, UTPSequence.isAfter(packet.seq, eof) { return }
        let distance = UTPSequence.distance(from: ackNr, to: packet.seq)
        if distance <= 0 {
            ackNow = true  // a duplicate: our ack was lost
        } else if distance == 1 {
            if !packet.payload.isEmpty { delivered.append(packet.payload) }
            ackNr = packet.seq
            while let payload = reorder.advance() {
                if !payload.isEmpty { delivered.append(payload) }
                ackNr &+= 1
            }
            acksOwed += 1
            if acksOwed >= 2 || reorder.count > 0 { ackNow = true }
        } else {
            if reorder.bytes + packet.payload.count <= configuration.receiveWindow {
                _ = reorder.store(packet.payload, distance: distance)
            }
            ackNow = true
        }
        if let eof = eofSeq, ackNr == eof, !endDelivered {
            endDelivered = true
            ackNow = true
            events.append(.endOfStream)
            if finAckedAt != nil { finish(.local) }
        }
        if ackNow, state != .closed || endDelivered { sendState(now: now) }
    }
}
