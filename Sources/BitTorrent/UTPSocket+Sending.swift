extension UTPSocket {
    /// Sends what the windows and pacing allow: lost packets first, then new data, then the
    /// FIN once everything written is out.
    public func flush(now: Int64) {
        guard state == .connected || state == .synReceived else { return }
        refillPacing(now: now)
        var window = min(congestion.window, peerWindow)
        // A zero window is probed with one packet when nothing is in flight.
        if window < payloadSize, sent.flightBytes == 0 { window = payloadSize }
        if sent.lostCount > 0 { resendLost(window: window, now: now) }
        // New data waits until the responder knows we are connected (it is when its
        // first DATA arrives; we, the responder, wait for none: our STATE told it).
        while unsentBytes > 0, !sent.isFull {
            let size = min(payloadSize, unsentBytes)
            guard sent.flightBytes + size <= window || sent.flightBytes == 0, paceAllows(size) else { break }
            send(kind: .data, payload: pending.take(size), now: now)
        }
        if closeRequested, unsentBytes == 0, finSeq == nil, !sent.isFull {
            finSeq = seqNext
            send(kind: .fin, payload: [], now: now)
        }
    }

    private func send(kind: UTPPacket.Kind, payload: ArraySlice<UInt8>, now: Int64) {
        let seq = seqNext
        seqNext &+= 1
        emit(kind: kind, seq: seq, payload: payload, now: now)
        sent.insert(.init(seq: seq, kind: kind, payload: payload, sentAt: now, transmissions: 1))
        paceCredit -= Double(payload.count + UTPPacket.headerLength)
        if retransmitDeadline == nil { retransmitDeadline = now + congestion.timeout }
    }

    private func resendLost(window: Int, now: Int64) {
        let span = UTPSequence.distance(from: lastAcked, to: seqNext &- 1)
        var offset = 1
        while offset <= span, sent.lostCount > 0 {
            let seq = lastAcked &+ UInt16(offset)
            offset += 1
            guard let entry = sent[seq], entry.lost else { continue }
            guard sent.flightBytes + entry.payload.count <= window || sent.flightBytes == 0,
                  paceAllows(entry.payload.count) else { return }
            emit(kind: entry.kind, seq: seq, payload: entry.payload, now: now)
            sent.resent(seq, at: now)
            lastResentAt = now
            retransmissions += 1
            paceCredit -= Double(entry.payload.count + UTPPacket.headerLength)
        }
    }

    private func refillPacing(now: Int64) {
        defer { paceUpdated = now }
        guard let rate = congestion.pacingRate else {
            paceCredit = Double(congestion.burst)
            return
        }
        let elapsed = Double(max(0, now - paceUpdated))
        paceCredit = min(Double(congestion.burst), paceCredit + rate * elapsed / 1e9)
    }

    private func paceAllows(_ payload: Int) -> Bool {
        paceCredit >= Double(payload + UTPPacket.headerLength) || congestion.pacingRate == nil
    }

    /// Whether the sender is held back by pacing alone (so `deadline` includes a pacing wakeup).
    private var pacingBlocked: Bool {
        guard state == .connected || state == .synReceived, congestion.pacingRate != nil else { return false }
        let next = sent.lostCount > 0 ? payloadSize : min(payloadSize, unsentBytes)
        guard next > 0 else { return false }
        let window = min(congestion.window, peerWindow)
        return (sent.flightBytes + next <= window || sent.flightBytes == 0)
            && paceCredit < Double(next + UTPPacket.headerLength)
    }

    /// When `tick` next has something to do.
    public var deadline: Int64? {
        guard state != .closed else { return nil }
        var earliest = retransmitDeadline
        func consider(_ time: Int64) { earliest = min(earliest ?? time, time) }
        if state == .connected { consider(lastSent + configuration.keepAliveInterval) }
        if let acked = finAckedAt { consider(acked + Self.linger) }
        if pacingBlocked, let rate = congestion.pacingRate {
            let missing = Double(payloadSize + UTPPacket.headerLength) - paceCredit
            consider(paceUpdated + Int64(max(1, missing / rate * 1e9)))
        }
        return earliest
    }

    /// Timers: SYN and packet retransmission, pacing, keep-alive.
    public func tick(now: Int64) {
        guard state != .closed else { return }
        if let acked = finAckedAt, now >= acked + Self.linger {
            finish(.local)
            return
        }
        if let due = retransmitDeadline, now >= due {
            if state == .synSent {
                if synAttemptsMade >= Self.synAttempts {
                    finish(.timedOut)
                    return
                }
                sendSyn(now: now)
                return
            }
            consecutiveTimeouts += 1
            timeouts += 1
            if consecutiveTimeouts > configuration.maxTimeouts {
                finish(.timedOut)
                return
            }
            congestion.timedOut(now: now)
            var seq = lastAcked
            while seq != seqNext &- 1 {
                seq &+= 1
                sent.markLost(seq)
            }
            retransmitDeadline = now + congestion.timeout
            paceCredit = Double(congestion.burst)
        }
        flush(now: now)
        if state == .connected, now - lastSent >= configuration.keepAliveInterval { sendState(now: now) }
    }
}
