import AsyncHTTPClient
import BitTorrent
import NIOCore
import NIOPosix

/// Announces one torrent to its trackers (BEP 12 tiers: within a tier, the first URL that
/// answers moves to the front; a tier fails over to the next URL, then the next tier).
/// Lives on the engine's event loop; HTTP goes through async-http-client, UDP through the
/// engine's shared datagram socket.
final class TrackerAnnouncer: @unchecked Sendable {  // confined to the engine's event loop
    /// Retry delay after a failed round, doubled per consecutive failure up to 30 min.
    static let retryBase: Int64 = 15_000_000_000
    static let retryMax: Int64 = 1_800_000_000_000

    unowned let torrent: Torrent
    var tiers: [[String]]
    var nextAnnounce: Int64 = 0
    var inFlight = false
    var pendingEvent: AnnounceRequest.Event = .started
    var failures = 0
    var trackerIDs: [String: String] = [:]
    var udpClients: [String: UDPTrackerClient] = [:]
    var udpAddresses: [String: SocketAddress] = [:]
    /// Where the current round is: tier and URL index.
    var cursor: (tier: Int, index: Int) = (0, 0)
    let key = UInt32.random(in: 1...UInt32.max)
    /// Every tracker is scraped this often (counts of seeders, leechers, completed).
    static let scrapeInterval: Int64 = 1_800_000_000_000
    /// The first scrape follows the first successful announce by this much.
    static let firstScrapeDelay: Int64 = 2_000_000_000
    var nextScrape: Int64?
    /// What the trackers were told changed while an announce was under way: announce again
    /// as soon as it ends.
    var announceAgain = false

    init(torrent: Torrent, tiers: [[String]]) {
        self.torrent = torrent
        self.tiers = tiers.map { $0.shuffled() }
    }

    var engine: Engine { torrent.engine }

    func tick(now: Int64) {
        for url in Array(udpClients.keys) {
            guard var client = udpClients[url] else { continue }
            let actions = client.tick(now: now)
            udpClients[url] = client
            perform(actions, url: url)
        }
        if let next = nextScrape, now >= next, !torrent.isStopped {
            nextScrape = now + TrackerAnnouncer.scrapeInterval
            scrapeAll(now: now)
        }
        guard !tiers.isEmpty, !inFlight, now >= nextAnnounce, !torrent.isStopped else { return }
        cursor = (0, 0)
        announceCurrent(now: now)
    }

    /// Announce `completed` at once.
    func completed() {
        pendingEvent = .completed
        announceNow()
    }

    /// Tells the trackers what changed (the check found data on disk, a download ended) now,
    /// not at the next interval; after the announce under way, if there is one.
    func announceNow() {
        nextAnnounce = 0
        if inFlight {
            announceAgain = true
        } else {
            tick(now: Engine.now())
        }
    }

    private func request(event: AnnounceRequest.Event, url: String) -> AnnounceRequest {
        let stats = torrent.stats(now: Engine.now())
        let left = max(0, (stats.totalSize ?? 1) - stats.verifiedBytes)
        return AnnounceRequest(infoHash: torrent.infoHash, peerID: engine.configuration.peerID,
                               port: UInt16(clamping: engine.announcedPort), uploaded: stats.uploaded,
                               downloaded: stats.downloaded, left: left, event: event,
                               numWant: event == .stopped ? 0 : 50, key: key, trackerID: trackerIDs[url])
    }

    private func announceCurrent(now: Int64) {
        guard cursor.tier < tiers.count else {
            // Every tracker failed this round.
            inFlight = false
            failures += 1
            nextAnnounce = now + min(TrackerAnnouncer.retryMax, TrackerAnnouncer.retryBase << Int64(min(failures - 1, 10)))
            return
        }
        inFlight = true
        let url = tiers[cursor.tier][cursor.index]
        let request = request(event: pendingEvent, url: url)
        if url.lowercased().hasPrefix("udp://") {
            announceUDP(url, request, now: now)
        } else if url.lowercased().hasPrefix("http://") || url.lowercased().hasPrefix("https://") {
            announceHTTP(url, request)
        } else {
            finished(url, .failure(TrackerError(.transport("unsupported tracker scheme"))))
        }
    }

    private func announceHTTP(_ url: String, _ request: AnnounceRequest) {
        let full = HTTPTrackerProtocol.announceURL(url, request)
        let client = engine.httpClient
        let loop = engine.loop
        Task {
            let result: Result<AnnounceResponse, TrackerError>
            do {
                let response = try await client.execute(HTTPClientRequest(url: full), timeout: .seconds(30))
                let body = try await response.body.collect(upTo: HTTPTrackerProtocol.maxResponseSize)
                let bytes = body.getBytes(at: body.readerIndex, length: body.readableBytes) ?? []
                do throws(TrackerError) {
                    result = .success(try HTTPTrackerProtocol.parseAnnounce(bytes))
                } catch let error where response.status.code != 200 {
                    result = .failure(TrackerError(.transport("HTTP \(response.status.code) (\(error))")))
                } catch {
                    result = .failure(error)
                }
            } catch let error as NIOTooManyBytesError {
                result = .failure(TrackerError(.tooLarge(size: error.maxBytes ?? HTTPTrackerProtocol.maxResponseSize + 1,
                                                          limit: HTTPTrackerProtocol.maxResponseSize)))
            } catch {
                result = .failure(TrackerError(.transport("\(error)")))
            }
            loop.execute { self.finished(url, result) }
        }
    }

    private func announceUDP(_ url: String, _ request: AnnounceRequest, now: Int64) {
        guard let (host, port) = TrackerAnnouncer.hostAndPort(url) else {
            finished(url, .failure(TrackerError(.transport("malformed UDP tracker URL"))))
            return
        }
        if udpAddresses[url] == nil {
            engine.onDisk { try SocketAddress.makeAddressResolvingHost(host, port: port) }.whenComplete { result in
                switch result {
                case .success(let address):
                    self.udpAddresses[url] = address
                    self.announceUDP(url, request, now: Engine.now())
                case .failure(let error):
                    self.finished(url, .failure(TrackerError(.transport("cannot resolve \(host): \(error)"))))
                }
            }
            return
        }
        var client = udpClients[url] ?? UDPTrackerClient(transactionSeed: UInt32.random(in: 0...UInt32.max),
                                                         ipv6: udpAddresses[url]?.protocol == .inet6)
        let actions = client.announce(request, now: now)
        udpClients[url] = client
        perform(actions, url: url)
    }

    /// A datagram from a tracker's address.
    func udpReceived(_ bytes: [UInt8], from address: SocketAddress) -> Bool {
        for (url, trackerAddress) in udpAddresses where trackerAddress == address {
            guard var client = udpClients[url], client.awaitedTransaction != nil else { continue }
            let actions = client.received(bytes, now: Engine.now())
            udpClients[url] = client
            perform(actions, url: url)
            if !actions.isEmpty { return true }
        }
        return false
    }

    private func perform(_ actions: [UDPTrackerClient.Action], url: String) {
        for action in actions {
            switch action {
            case .send(let bytes):
                guard let address = udpAddresses[url] else { continue }
                engine.sendUDP(bytes, to: address)
            case .announced(let response):
                finished(url, .success(response))
            case .failed(let error):
                finished(url, .failure(error))
            case .scraped(let entry):
                scraped(url, .success(entry))
            case .scrapeFailed(let error):
                scraped(url, .failure(error))
            }
        }
    }

    private func finished(_ url: String, _ result: Result<AnnounceResponse, TrackerError>) {
        guard !torrent.isStopped || pendingEvent == .stopped else { return }
        let now = Engine.now()
        let statusIndex = torrent.trackerStatus.firstIndex { $0.url == url }
        switch result {
        case .success(let response):
            failures = 0
            if let id = response.trackerID { trackerIDs[url] = id }
            if let index = statusIndex {
                torrent.trackerStatus[index].lastError = nil
                torrent.trackerStatus[index].lastWarning = response.warning
                torrent.trackerStatus[index].peersReceived = response.peers.count
                torrent.trackerStatus[index].seeders = response.seeders
                torrent.trackerStatus[index].leechers = response.leechers
                torrent.trackerStatus[index].nextAnnounceIn = Double(response.interval)
            }
            // BEP 12: a tracker that answers moves to the front of its tier.
            if cursor.tier < tiers.count, let position = tiers[cursor.tier].firstIndex(of: url), position > 0 {
                tiers[cursor.tier].remove(at: position)
                tiers[cursor.tier].insert(url, at: 0)
            }
            torrent.addCandidates(response.peers, source: .tracker)
            pendingEvent = .none
            inFlight = false
            if nextScrape == nil { nextScrape = now + TrackerAnnouncer.firstScrapeDelay }
            let interval = max(response.interval, response.minInterval ?? 0)
            nextAnnounce = now + Int64(interval) * 1_000_000_000
            torrent.logger.info("announced", metadata: ["tracker": "\(url)", "peers": "\(response.peers.count)"])
            if announceAgain {
                announceAgain = false
                nextAnnounce = 0
                tick(now: now)
            }
        case .failure(let error):
            if let index = statusIndex { torrent.trackerStatus[index].lastError = error.description }
            torrent.logger.info("announce failed", metadata: ["tracker": "\(url)", "error": "\(error)"])
            guard inFlight else { return }
            if cursor.tier < tiers.count && cursor.index + 1 < tiers[cursor.tier].count {
                cursor.index += 1
            } else {
                cursor = (cursor.tier + 1, 0)
            }
            announceCurrent(now: now)
        }
    }

    // MARK: Scrape

    /// Asks every tracker for the torrent's counts (HTTP trackers that follow the scrape
    /// URL convention, and UDP trackers already resolved).
    private func scrapeAll(now: Int64) {
        let hash = torrent.infoHash
        for url in tiers.joined() {
            if url.lowercased().hasPrefix("udp://") {
                guard udpAddresses[url] != nil else { continue }
                var client = udpClients[url] ?? UDPTrackerClient(transactionSeed: UInt32.random(in: 0...UInt32.max),
                                                                 ipv6: udpAddresses[url]?.protocol == .inet6)
                let actions = client.scrape(hash, now: now)
                udpClients[url] = client
                perform(actions, url: url)
            } else if let scrape = HTTPTrackerProtocol.scrapeURL(url) {
                let full = HTTPTrackerProtocol.scrapeRequestURL(scrape, hash)
                let client = engine.httpClient
                let loop = engine.loop
                Task {
                    let result: Result<UDPTrackerPacket.ScrapeEntry, TrackerError>
                    do {
                        let response = try await client.execute(HTTPClientRequest(url: full), timeout: .seconds(30))
                        let body = try await response.body.collect(upTo: HTTPTrackerProtocol.maxResponseSize)
                        let bytes = body.getBytes(at: body.readerIndex, length: body.readableBytes) ?? []
                        do throws(TrackerError) {
                            result = .success(try HTTPTrackerProtocol.parseScrape(bytes, infoHash: hash))
                        } catch {
                            result = .failure(error)
                        }
                    } catch {
                        result = .failure(TrackerError(.transport("\(error)")))
                    }
                    loop.execute { self.scraped(url, result) }
                }
            }
        }
    }

    private func scraped(_ url: String, _ result: Result<UDPTrackerPacket.ScrapeEntry, TrackerError>) {
        guard let index = torrent.trackerStatus.firstIndex(where: { $0.url == url }) else { return }
        switch result {
        case .success(let entry):
            torrent.trackerStatus[index].seeders = entry.seeders
            torrent.trackerStatus[index].leechers = entry.leechers
            torrent.trackerStatus[index].completed = entry.completed
            torrent.logger.debug("scraped", metadata: ["tracker": "\(url)", "seeders": "\(entry.seeders)"])
        case .failure(let error):
            torrent.logger.debug("scrape failed", metadata: ["tracker": "\(url)", "error": "\(error)"])
        }
    }

    /// Best-effort `stopped` to the first HTTP(S) tracker of each tier; not waited for. UDP
    /// trackers get none: it would need a fresh connect exchange at shutdown, and they drop
    /// the peer after its announce interval anyway.
    func stop() {
        for tier in tiers {
            guard let url = tier.first else { continue }
            let request = request(event: .stopped, url: url)
            if url.hasPrefix("http") {
                let client = engine.httpClient
                let full = HTTPTrackerProtocol.announceURL(url, request)
                Task { _ = try? await client.execute(HTTPClientRequest(url: full), timeout: .seconds(3)) }
            }
        }
    }

    static func hostAndPort(_ url: String) -> (String, Int)? {
        let parts = url.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0].hasSuffix(":"), parts[1].isEmpty else { return nil }
        var rest = parts[2]
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        guard let address = PeerAddress(String(rest)) else { return nil }
        return (address.host, Int(address.port))
    }
}
