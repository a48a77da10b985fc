"""What Packetbeat 9.3.0 emits for its three SIP system-test captures (sip and
sip_authenticated_register in ../shared, sip_tcp read from the beats module with
``transport_protocol: tcp`` as its golden test runs it), generated once from its ndjson
output. Events flattened, ``agent``, ``host``, ``ecs`` and ``@metadata`` left out, in the
order Packetbeat published them (capture order)."""

# fmt: off
EXPECTED: dict[str, list[dict[str, object]]] = {'sip': [{'@timestamp': '2016-11-26T15:09:45.946Z',
          'client.ip': '10.0.2.20',
          'client.port': 5060,
          'destination.ip': '10.0.2.15',
          'destination.port': 5060,
          'event.action': 'sip-invite',
          'event.category': ['network'],
          'event.dataset': 'sip',
          'event.duration': 0,
          'event.end': '2016-11-26T15:09:45.946Z',
          'event.kind': 'event',
          'event.original': 'INVITE sip:test@10.0.2.15:5060 SIP/2.0\r\n'
                            'Via: SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2187-1-0\r\n'
                            'From: "DVI4/8000" <sip:sipp@10.0.2.20:5060>;tag=1\r\n'
                            'To: test <sip:test@10.0.2.15:5060>\r\n'
                            'Call-ID: 1-2187@10.0.2.20\r\n'
                            'CSeq: 1 INVITE\r\n'
                            'Contact: sip:sipp@10.0.2.20:5060\r\n'
                            'Max-Forwards: 70\r\n'
                            'Content-Type: application/sdp\r\n'
                            'Content-Length:   123\r\n'
                            '\r\n'
                            'v=0\r\n'
                            'o=- 42 42 IN IP4 10.0.2.20\r\n'
                            's=-\r\n'
                            'c=IN IP4 10.0.2.20\r\n'
                            't=0 0\r\n'
                            'm=audio 6000 RTP/AVP 5\r\n'
                            'a=rtpmap:5 DVI4/8000\r\n'
                            'a=recvonly\r\n',
          'event.sequence': 1,
          'event.start': '2016-11-26T15:09:45.946Z',
          'event.type': ['info', 'protocol'],
          'network.application': 'sip',
          'network.community_id': '1:xDRQZvk3ErEhBDslXv1c6EKI804=',
          'network.direction': 'unknown',
          'network.iana_number': '17',
          'network.protocol': 'sip',
          'network.transport': 'udp',
          'network.type': 'ipv4',
          'related.hosts': ['10.0.2.15', '10.0.2.20'],
          'related.ip': ['10.0.2.20', '10.0.2.15'],
          'related.user': ['test', 'sipp'],
          'server.ip': '10.0.2.15',
          'server.port': 5060,
          'sip.call_id': '1-2187@10.0.2.20',
          'sip.contact.display_info': 'test',
          'sip.contact.uri.host': '10.0.2.15',
          'sip.contact.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.contact.uri.port': 5060,
          'sip.contact.uri.scheme': 'sip',
          'sip.contact.uri.username': 'test',
          'sip.content_length': 123,
          'sip.content_type': 'application/sdp',
          'sip.cseq.code': 1,
          'sip.cseq.method': 'INVITE',
          'sip.from.display_info': 'DVI4/8000',
          'sip.from.tag': '1',
          'sip.from.uri.host': '10.0.2.20',
          'sip.from.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.from.uri.port': 5060,
          'sip.from.uri.scheme': 'sip',
          'sip.from.uri.username': 'sipp',
          'sip.max_forwards': 70,
          'sip.method': 'INVITE',
          'sip.sdp.body.original': 'v=0\r\n'
                                   'o=- 42 42 IN IP4 10.0.2.20\r\n'
                                   's=-\r\n'
                                   'c=IN IP4 10.0.2.20\r\n'
                                   't=0 0\r\n'
                                   'm=audio 6000 RTP/AVP 5\r\n'
                                   'a=rtpmap:5 DVI4/8000\r\n'
                                   'a=recvonly\r\n',
          'sip.sdp.connection.address': '10.0.2.20',
          'sip.sdp.connection.info': 'IN IP4 10.0.2.20',
          'sip.sdp.owner.ip': '10.0.2.20',
          'sip.sdp.owner.session_id': '42',
          'sip.sdp.owner.version': '42',
          'sip.sdp.version': '0',
          'sip.to.display_info': 'test',
          'sip.to.uri.host': '10.0.2.15',
          'sip.to.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.to.uri.port': 5060,
          'sip.to.uri.scheme': 'sip',
          'sip.to.uri.username': 'test',
          'sip.type': 'request',
          'sip.uri.host': '10.0.2.15',
          'sip.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.uri.port': 5060,
          'sip.uri.scheme': 'sip',
          'sip.uri.username': 'test',
          'sip.version': '2.0',
          'sip.via.original': ['SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2187-1-0'],
          'source.ip': '10.0.2.20',
          'source.port': 5060,
          'status': 'OK',
          'type': 'sip'},
         {'@timestamp': '2016-11-26T15:09:45.946Z',
          'client.ip': '10.0.2.15',
          'client.port': 5060,
          'destination.ip': '10.0.2.20',
          'destination.port': 5060,
          'event.action': 'sip-invite',
          'event.category': ['network'],
          'event.dataset': 'sip',
          'event.duration': 0,
          'event.end': '2016-11-26T15:09:45.946Z',
          'event.kind': 'event',
          'event.original': 'SIP/2.0 100 Trying\r\n'
                            'Via: SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2187-1-0\r\n'
                            'From: "DVI4/8000" <sip:sipp@10.0.2.20:5060>;tag=1\r\n'
                            'To: test <sip:test@10.0.2.15:5060>\r\n'
                            'Call-ID: 1-2187@10.0.2.20\r\n'
                            'CSeq: 1 INVITE\r\n'
                            'User-Agent: FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit\r\n'
                            'Content-Length: 0\r\n'
                            '\r\n',
          'event.reason': 'Trying',
          'event.sequence': 1,
          'event.start': '2016-11-26T15:09:45.946Z',
          'event.type': ['info', 'protocol'],
          'network.application': 'sip',
          'network.community_id': '1:xDRQZvk3ErEhBDslXv1c6EKI804=',
          'network.direction': 'unknown',
          'network.iana_number': '17',
          'network.protocol': 'sip',
          'network.transport': 'udp',
          'network.type': 'ipv4',
          'related.hosts': ['10.0.2.20', '10.0.2.15'],
          'related.ip': ['10.0.2.15', '10.0.2.20'],
          'related.user': ['sipp', 'test'],
          'server.ip': '10.0.2.20',
          'server.port': 5060,
          'sip.call_id': '1-2187@10.0.2.20',
          'sip.code': 100,
          'sip.cseq.code': 1,
          'sip.cseq.method': 'INVITE',
          'sip.from.display_info': 'DVI4/8000',
          'sip.from.tag': '1',
          'sip.from.uri.host': '10.0.2.20',
          'sip.from.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.from.uri.port': 5060,
          'sip.from.uri.scheme': 'sip',
          'sip.from.uri.username': 'sipp',
          'sip.status': 'Trying',
          'sip.to.display_info': 'test',
          'sip.to.uri.host': '10.0.2.15',
          'sip.to.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.to.uri.port': 5060,
          'sip.to.uri.scheme': 'sip',
          'sip.to.uri.username': 'test',
          'sip.type': 'response',
          'sip.user_agent.original': 'FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit',
          'sip.version': '2.0',
          'sip.via.original': ['SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2187-1-0'],
          'source.ip': '10.0.2.15',
          'source.port': 5060,
          'status': 'OK',
          'type': 'sip'},
         {'@timestamp': '2016-11-26T15:09:45.950Z',
          'client.ip': '10.0.2.15',
          'client.port': 5060,
          'destination.ip': '10.0.2.20',
          'destination.port': 5060,
          'event.action': 'sip-invite',
          'event.category': ['network'],
          'event.dataset': 'sip',
          'event.duration': 0,
          'event.end': '2016-11-26T15:09:45.950Z',
          'event.kind': 'event',
          'event.original': 'SIP/2.0 200 OK\r\n'
                            'Via: SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2187-1-0\r\n'
                            'From: "DVI4/8000" <sip:sipp@10.0.2.20:5060>;tag=1\r\n'
                            'To: test <sip:test@10.0.2.15:5060>;tag=e2jv529vDZ3eQ\r\n'
                            'Call-ID: 1-2187@10.0.2.20\r\n'
                            'CSeq: 1 INVITE\r\n'
                            'Contact: <sip:test@10.0.2.15:5060;transport=udp>\r\n'
                            'User-Agent: FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit\r\n'
                            'Accept: application/sdp\r\n'
                            'Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, '
                            'REGISTER, REFER, NOTIFY, PUBLISH, SUBSCRIBE\r\n'
                            'Supported: timer, path, replaces\r\n'
                            'Allow-Events: talk, hold, conference, presence, as-feature-event, '
                            'dialog, line-seize, call-info, sla, include-session-description, '
                            'presence.winfo, message-summary, refer\r\n'
                            'Content-Type: application/sdp\r\n'
                            'Content-Disposition: session\r\n'
                            'Content-Length: 226\r\n'
                            'Remote-Party-ID: "test" '
                            '<sip:test@10.0.2.15>;party=calling;privacy=off;screen=no\r\n'
                            '\r\n'
                            'v=0\r\n'
                            'o=FreeSWITCH 1480142495 1480142496 IN IP4 10.0.2.15\r\n'
                            's=FreeSWITCH\r\n'
                            'c=IN IP4 10.0.2.15\r\n'
                            't=0 0\r\n'
                            'm=audio 30490 RTP/AVP 5 101\r\n'
                            'a=rtpmap:5 DVI4/8000\r\n'
                            'a=rtpmap:101 telephone-event/8000\r\n'
                            'a=fmtp:101 0-16\r\n'
                            'a=sendonly\r\n'
                            'a=ptime:20\r\n',
          'event.outcome': 'success',
          'event.reason': 'OK',
          'event.sequence': 1,
          'event.start': '2016-11-26T15:09:45.950Z',
          'event.type': ['info', 'protocol'],
          'network.application': 'sip',
          'network.community_id': '1:xDRQZvk3ErEhBDslXv1c6EKI804=',
          'network.direction': 'unknown',
          'network.iana_number': '17',
          'network.protocol': 'sip',
          'network.transport': 'udp',
          'network.type': 'ipv4',
          'related.hosts': ['10.0.2.20', '10.0.2.15'],
          'related.ip': ['10.0.2.15', '10.0.2.20'],
          'related.user': ['sipp', 'test', 'FreeSWITCH'],
          'server.ip': '10.0.2.20',
          'server.port': 5060,
          'sip.accept': 'application/sdp',
          'sip.allow': ['invite',
                        'ack',
                        'bye',
                        'cancel',
                        'options',
                        'message',
                        'info',
                        'update',
                        'register',
                        'refer',
                        'notify',
                        'publish',
                        'subscribe'],
          'sip.call_id': '1-2187@10.0.2.20',
          'sip.code': 200,
          'sip.contact.display_info': 'test',
          'sip.contact.uri.host': '10.0.2.15',
          'sip.contact.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.contact.uri.port': 5060,
          'sip.contact.uri.scheme': 'sip',
          'sip.contact.uri.username': 'test',
          'sip.content_length': 226,
          'sip.content_type': 'application/sdp',
          'sip.cseq.code': 1,
          'sip.cseq.method': 'INVITE',
          'sip.from.display_info': 'DVI4/8000',
          'sip.from.tag': '1',
          'sip.from.uri.host': '10.0.2.20',
          'sip.from.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.from.uri.port': 5060,
          'sip.from.uri.scheme': 'sip',
          'sip.from.uri.username': 'sipp',
          'sip.sdp.body.original': 'v=0\r\n'
                                   'o=FreeSWITCH 1480142495 1480142496 IN IP4 10.0.2.15\r\n'
                                   's=FreeSWITCH\r\n'
                                   'c=IN IP4 10.0.2.15\r\n'
                                   't=0 0\r\n'
                                   'm=audio 30490 RTP/AVP 5 101\r\n'
                                   'a=rtpmap:5 DVI4/8000\r\n'
                                   'a=rtpmap:101 telephone-event/8000\r\n'
                                   'a=fmtp:101 0-16\r\n'
                                   'a=sendonly\r\n'
                                   'a=ptime:20\r\n',
          'sip.sdp.connection.address': '10.0.2.15',
          'sip.sdp.connection.info': 'IN IP4 10.0.2.15',
          'sip.sdp.owner.ip': '10.0.2.15',
          'sip.sdp.owner.session_id': '1480142495',
          'sip.sdp.owner.username': 'FreeSWITCH',
          'sip.sdp.owner.version': '1480142496',
          'sip.sdp.session.name': 'FreeSWITCH',
          'sip.sdp.version': '0',
          'sip.status': 'OK',
          'sip.supported': ['timer', 'path', 'replaces'],
          'sip.to.display_info': 'test',
          'sip.to.tag': 'e2jv529vDZ3eQ',
          'sip.to.uri.host': '10.0.2.15',
          'sip.to.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.to.uri.port': 5060,
          'sip.to.uri.scheme': 'sip',
          'sip.to.uri.username': 'test',
          'sip.type': 'response',
          'sip.user_agent.original': 'FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit',
          'sip.version': '2.0',
          'sip.via.original': ['SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2187-1-0'],
          'source.ip': '10.0.2.15',
          'source.port': 5060,
          'status': 'OK',
          'type': 'sip'},
         {'@timestamp': '2016-11-26T15:09:45.951Z',
          'client.ip': '10.0.2.20',
          'client.port': 5060,
          'destination.ip': '10.0.2.15',
          'destination.port': 5060,
          'event.action': 'sip-ack',
          'event.category': ['network'],
          'event.dataset': 'sip',
          'event.duration': 0,
          'event.end': '2016-11-26T15:09:45.951Z',
          'event.kind': 'event',
          'event.original': 'ACK sip:test@10.0.2.15:5060 SIP/2.0\r\n'
                            'Via: SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2187-1-5\r\n'
                            'From: "DVI4/8000" <sip:sipp@10.0.2.20:5060>;tag=1\r\n'
                            'To: test <sip:test@10.0.2.15:5060>;tag=e2jv529vDZ3eQ\r\n'
                            'Call-ID: 1-2187@10.0.2.20\r\n'
                            'CSeq: 1 ACK\r\n'
                            'Contact: sip:sipp@10.0.2.20:5060\r\n'
                            'Max-Forwards: 70\r\n'
                            'Content-Length: 0\r\n'
                            '\r\n',
          'event.sequence': 1,
          'event.start': '2016-11-26T15:09:45.951Z',
          'event.type': ['info', 'protocol'],
          'network.application': 'sip',
          'network.community_id': '1:xDRQZvk3ErEhBDslXv1c6EKI804=',
          'network.direction': 'unknown',
          'network.iana_number': '17',
          'network.protocol': 'sip',
          'network.transport': 'udp',
          'network.type': 'ipv4',
          'related.hosts': ['10.0.2.15', '10.0.2.20'],
          'related.ip': ['10.0.2.20', '10.0.2.15'],
          'related.user': ['test', 'sipp'],
          'server.ip': '10.0.2.15',
          'server.port': 5060,
          'sip.call_id': '1-2187@10.0.2.20',
          'sip.contact.display_info': 'test',
          'sip.contact.uri.host': '10.0.2.15',
          'sip.contact.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.contact.uri.port': 5060,
          'sip.contact.uri.scheme': 'sip',
          'sip.contact.uri.username': 'test',
          'sip.cseq.code': 1,
          'sip.cseq.method': 'ACK',
          'sip.from.display_info': 'DVI4/8000',
          'sip.from.tag': '1',
          'sip.from.uri.host': '10.0.2.20',
          'sip.from.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.from.uri.port': 5060,
          'sip.from.uri.scheme': 'sip',
          'sip.from.uri.username': 'sipp',
          'sip.max_forwards': 70,
          'sip.method': 'ACK',
          'sip.to.display_info': 'test',
          'sip.to.tag': 'e2jv529vDZ3eQ',
          'sip.to.uri.host': '10.0.2.15',
          'sip.to.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.to.uri.port': 5060,
          'sip.to.uri.scheme': 'sip',
          'sip.to.uri.username': 'test',
          'sip.type': 'request',
          'sip.uri.host': '10.0.2.15',
          'sip.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.uri.port': 5060,
          'sip.uri.scheme': 'sip',
          'sip.uri.username': 'test',
          'sip.version': '2.0',
          'sip.via.original': ['SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2187-1-5'],
          'source.ip': '10.0.2.20',
          'source.port': 5060,
          'status': 'OK',
          'type': 'sip'},
         {'@timestamp': '2016-11-26T15:09:54.450Z',
          'client.ip': '10.0.2.15',
          'client.port': 5060,
          'destination.ip': '10.0.2.20',
          'destination.port': 5060,
          'event.action': 'sip-bye',
          'event.category': ['network'],
          'event.dataset': 'sip',
          'event.duration': 0,
          'event.end': '2016-11-26T15:09:54.450Z',
          'event.kind': 'event',
          'event.original': 'BYE sip:sipp@10.0.2.20:5060 SIP/2.0\r\n'
                            'Via: SIP/2.0/UDP 10.0.2.15;rport;branch=z9hG4bKDQ7XK6BBH57ya\r\n'
                            'Max-Forwards: 70\r\n'
                            'From: test <sip:test@10.0.2.15:5060>;tag=e2jv529vDZ3eQ\r\n'
                            'To: "DVI4/8000" <sip:sipp@10.0.2.20:5060>;tag=1\r\n'
                            'Call-ID: 1-2187@10.0.2.20\r\n'
                            'CSeq: 99750433 BYE\r\n'
                            'User-Agent: FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit\r\n'
                            'Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, '
                            'REGISTER, REFER, NOTIFY, PUBLISH, SUBSCRIBE\r\n'
                            'Supported: timer, path, replaces\r\n'
                            'Reason: Q.850;cause=16;text="NORMAL_CLEARING"\r\n'
                            'Content-Length: 0\r\n'
                            '\r\n',
          'event.sequence': 99750433,
          'event.start': '2016-11-26T15:09:54.450Z',
          'event.type': ['info', 'protocol'],
          'network.application': 'sip',
          'network.community_id': '1:xDRQZvk3ErEhBDslXv1c6EKI804=',
          'network.direction': 'unknown',
          'network.iana_number': '17',
          'network.protocol': 'sip',
          'network.transport': 'udp',
          'network.type': 'ipv4',
          'related.hosts': ['10.0.2.20', '10.0.2.15'],
          'related.ip': ['10.0.2.15', '10.0.2.20'],
          'related.user': ['sipp', 'test'],
          'server.ip': '10.0.2.20',
          'server.port': 5060,
          'sip.allow': ['invite',
                        'ack',
                        'bye',
                        'cancel',
                        'options',
                        'message',
                        'info',
                        'update',
                        'register',
                        'refer',
                        'notify',
                        'publish',
                        'subscribe'],
          'sip.call_id': '1-2187@10.0.2.20',
          'sip.cseq.code': 99750433,
          'sip.cseq.method': 'BYE',
          'sip.from.display_info': 'test',
          'sip.from.tag': 'e2jv529vDZ3eQ',
          'sip.from.uri.host': '10.0.2.15',
          'sip.from.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.from.uri.port': 5060,
          'sip.from.uri.scheme': 'sip',
          'sip.from.uri.username': 'test',
          'sip.max_forwards': 70,
          'sip.method': 'BYE',
          'sip.supported': ['timer', 'path', 'replaces'],
          'sip.to.display_info': 'DVI4/8000',
          'sip.to.tag': '1',
          'sip.to.uri.host': '10.0.2.20',
          'sip.to.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.to.uri.port': 5060,
          'sip.to.uri.scheme': 'sip',
          'sip.to.uri.username': 'sipp',
          'sip.type': 'request',
          'sip.uri.host': '10.0.2.20',
          'sip.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.uri.port': 5060,
          'sip.uri.scheme': 'sip',
          'sip.uri.username': 'sipp',
          'sip.user_agent.original': 'FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit',
          'sip.version': '2.0',
          'sip.via.original': ['SIP/2.0/UDP 10.0.2.15;rport;branch=z9hG4bKDQ7XK6BBH57ya'],
          'source.ip': '10.0.2.15',
          'source.port': 5060,
          'status': 'OK',
          'type': 'sip'},
         {'@timestamp': '2016-11-26T15:09:54.450Z',
          'client.ip': '10.0.2.20',
          'client.port': 5060,
          'destination.ip': '10.0.2.15',
          'destination.port': 5060,
          'event.action': 'sip-bye',
          'event.category': ['network'],
          'event.dataset': 'sip',
          'event.duration': 0,
          'event.end': '2016-11-26T15:09:54.450Z',
          'event.kind': 'event',
          'event.original': 'SIP/2.0 200 OK\r\n'
                            'Via: SIP/2.0/UDP 10.0.2.15;rport;branch=z9hG4bKDQ7XK6BBH57ya\r\n'
                            'From: test <sip:test@10.0.2.15:5060>;tag=e2jv529vDZ3eQ\r\n'
                            'To: "DVI4/8000" <sip:sipp@10.0.2.20:5060>;tag=1\r\n'
                            'Call-ID: 1-2187@10.0.2.20\r\n'
                            'CSeq: 99750433 BYE\r\n'
                            'Contact: <sip:10.0.2.20:5060;transport=UDP>\r\n'
                            'Content-Length: 0\r\n'
                            '\r\n',
          'event.outcome': 'success',
          'event.reason': 'OK',
          'event.sequence': 99750433,
          'event.start': '2016-11-26T15:09:54.450Z',
          'event.type': ['info', 'protocol'],
          'network.application': 'sip',
          'network.community_id': '1:xDRQZvk3ErEhBDslXv1c6EKI804=',
          'network.direction': 'unknown',
          'network.iana_number': '17',
          'network.protocol': 'sip',
          'network.transport': 'udp',
          'network.type': 'ipv4',
          'related.hosts': ['10.0.2.15', '10.0.2.20'],
          'related.ip': ['10.0.2.20', '10.0.2.15'],
          'related.user': ['test', 'sipp'],
          'server.ip': '10.0.2.15',
          'server.port': 5060,
          'sip.call_id': '1-2187@10.0.2.20',
          'sip.code': 200,
          'sip.contact.display_info': 'DVI4/8000',
          'sip.contact.uri.host': '10.0.2.20',
          'sip.contact.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.contact.uri.port': 5060,
          'sip.contact.uri.scheme': 'sip',
          'sip.contact.uri.username': 'sipp',
          'sip.cseq.code': 99750433,
          'sip.cseq.method': 'BYE',
          'sip.from.display_info': 'test',
          'sip.from.tag': 'e2jv529vDZ3eQ',
          'sip.from.uri.host': '10.0.2.15',
          'sip.from.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.from.uri.port': 5060,
          'sip.from.uri.scheme': 'sip',
          'sip.from.uri.username': 'test',
          'sip.status': 'OK',
          'sip.to.display_info': 'DVI4/8000',
          'sip.to.tag': '1',
          'sip.to.uri.host': '10.0.2.20',
          'sip.to.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.to.uri.port': 5060,
          'sip.to.uri.scheme': 'sip',
          'sip.to.uri.username': 'sipp',
          'sip.type': 'response',
          'sip.version': '2.0',
          'sip.via.original': ['SIP/2.0/UDP 10.0.2.15;rport;branch=z9hG4bKDQ7XK6BBH57ya'],
          'source.ip': '10.0.2.20',
          'source.port': 5060,
          'status': 'OK',
          'type': 'sip'},
         {'@timestamp': '2016-11-26T15:09:54.566Z',
          'client.ip': '10.0.2.20',
          'client.port': 5060,
          'destination.ip': '10.0.2.15',
          'destination.port': 5060,
          'event.action': 'sip-invite',
          'event.category': ['network'],
          'event.dataset': 'sip',
          'event.duration': 0,
          'event.end': '2016-11-26T15:09:54.566Z',
          'event.kind': 'event',
          'event.original': 'INVITE sip:test@10.0.2.15:5060 SIP/2.0\r\n'
                            'Via: SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2189-1-0\r\n'
                            'From: "DVI4/16000" <sip:sipp@10.0.2.20:5060>;tag=1\r\n'
                            'To: test <sip:test@10.0.2.15:5060>\r\n'
                            'Call-ID: 1-2189@10.0.2.20\r\n'
                            'CSeq: 1 INVITE\r\n'
                            'Contact: sip:sipp@10.0.2.20:5060\r\n'
                            'Max-Forwards: 70\r\n'
                            'Content-Type: application/sdp\r\n'
                            'Content-Length:   124\r\n'
                            '\r\n'
                            'v=0\r\n'
                            'o=- 42 42 IN IP4 10.0.2.20\r\n'
                            's=-\r\n'
                            'c=IN IP4 10.0.2.20\r\n'
                            't=0 0\r\n'
                            'm=audio 6000 RTP/AVP 6\r\n'
                            'a=rtpmap:6 DVI4/16000\r\n'
                            'a=recvonly\r\n',
          'event.sequence': 1,
          'event.start': '2016-11-26T15:09:54.566Z',
          'event.type': ['info', 'protocol'],
          'network.application': 'sip',
          'network.community_id': '1:xDRQZvk3ErEhBDslXv1c6EKI804=',
          'network.direction': 'unknown',
          'network.iana_number': '17',
          'network.protocol': 'sip',
          'network.transport': 'udp',
          'network.type': 'ipv4',
          'related.hosts': ['10.0.2.15', '10.0.2.20'],
          'related.ip': ['10.0.2.20', '10.0.2.15'],
          'related.user': ['test', 'sipp'],
          'server.ip': '10.0.2.15',
          'server.port': 5060,
          'sip.call_id': '1-2189@10.0.2.20',
          'sip.contact.display_info': 'test',
          'sip.contact.uri.host': '10.0.2.15',
          'sip.contact.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.contact.uri.port': 5060,
          'sip.contact.uri.scheme': 'sip',
          'sip.contact.uri.username': 'test',
          'sip.content_length': 124,
          'sip.content_type': 'application/sdp',
          'sip.cseq.code': 1,
          'sip.cseq.method': 'INVITE',
          'sip.from.display_info': 'DVI4/16000',
          'sip.from.tag': '1',
          'sip.from.uri.host': '10.0.2.20',
          'sip.from.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.from.uri.port': 5060,
          'sip.from.uri.scheme': 'sip',
          'sip.from.uri.username': 'sipp',
          'sip.max_forwards': 70,
          'sip.method': 'INVITE',
          'sip.sdp.body.original': 'v=0\r\n'
                                   'o=- 42 42 IN IP4 10.0.2.20\r\n'
                                   's=-\r\n'
                                   'c=IN IP4 10.0.2.20\r\n'
                                   't=0 0\r\n'
                                   'm=audio 6000 RTP/AVP 6\r\n'
                                   'a=rtpmap:6 DVI4/16000\r\n'
                                   'a=recvonly\r\n',
          'sip.sdp.connection.address': '10.0.2.20',
          'sip.sdp.connection.info': 'IN IP4 10.0.2.20',
          'sip.sdp.owner.ip': '10.0.2.20',
          'sip.sdp.owner.session_id': '42',
          'sip.sdp.owner.version': '42',
          'sip.sdp.version': '0',
          'sip.to.display_info': 'test',
          'sip.to.uri.host': '10.0.2.15',
          'sip.to.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.to.uri.port': 5060,
          'sip.to.uri.scheme': 'sip',
          'sip.to.uri.username': 'test',
          'sip.type': 'request',
          'sip.uri.host': '10.0.2.15',
          'sip.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.uri.port': 5060,
          'sip.uri.scheme': 'sip',
          'sip.uri.username': 'test',
          'sip.version': '2.0',
          'sip.via.original': ['SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2189-1-0'],
          'source.ip': '10.0.2.20',
          'source.port': 5060,
          'status': 'OK',
          'type': 'sip'},
         {'@timestamp': '2016-11-26T15:09:54.566Z',
          'client.ip': '10.0.2.15',
          'client.port': 5060,
          'destination.ip': '10.0.2.20',
          'destination.port': 5060,
          'event.action': 'sip-invite',
          'event.category': ['network'],
          'event.dataset': 'sip',
          'event.duration': 0,
          'event.end': '2016-11-26T15:09:54.566Z',
          'event.kind': 'event',
          'event.original': 'SIP/2.0 100 Trying\r\n'
                            'Via: SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2189-1-0\r\n'
                            'From: "DVI4/16000" <sip:sipp@10.0.2.20:5060>;tag=1\r\n'
                            'To: test <sip:test@10.0.2.15:5060>\r\n'
                            'Call-ID: 1-2189@10.0.2.20\r\n'
                            'CSeq: 1 INVITE\r\n'
                            'User-Agent: FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit\r\n'
                            'Content-Length: 0\r\n'
                            '\r\n',
          'event.reason': 'Trying',
          'event.sequence': 1,
          'event.start': '2016-11-26T15:09:54.566Z',
          'event.type': ['info', 'protocol'],
          'network.application': 'sip',
          'network.community_id': '1:xDRQZvk3ErEhBDslXv1c6EKI804=',
          'network.direction': 'unknown',
          'network.iana_number': '17',
          'network.protocol': 'sip',
          'network.transport': 'udp',
          'network.type': 'ipv4',
          'related.hosts': ['10.0.2.20', '10.0.2.15'],
          'related.ip': ['10.0.2.15', '10.0.2.20'],
          'related.user': ['sipp', 'test'],
          'server.ip': '10.0.2.20',
          'server.port': 5060,
          'sip.call_id': '1-2189@10.0.2.20',
          'sip.code': 100,
          'sip.cseq.code': 1,
          'sip.cseq.method': 'INVITE',
          'sip.from.display_info': 'DVI4/16000',
          'sip.from.tag': '1',
          'sip.from.uri.host': '10.0.2.20',
          'sip.from.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.from.uri.port': 5060,
          'sip.from.uri.scheme': 'sip',
          'sip.from.uri.username': 'sipp',
          'sip.status': 'Trying',
          'sip.to.display_info': 'test',
          'sip.to.uri.host': '10.0.2.15',
          'sip.to.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.to.uri.port': 5060,
          'sip.to.uri.scheme': 'sip',
          'sip.to.uri.username': 'test',
          'sip.type': 'response',
          'sip.user_agent.original': 'FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit',
          'sip.version': '2.0',
          'sip.via.original': ['SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2189-1-0'],
          'source.ip': '10.0.2.15',
          'source.port': 5060,
          'status': 'OK',
          'type': 'sip'},
         {'@timestamp': '2016-11-26T15:09:54.571Z',
          'client.ip': '10.0.2.15',
          'client.port': 5060,
          'destination.ip': '10.0.2.20',
          'destination.port': 5060,
          'event.action': 'sip-invite',
          'event.category': ['network'],
          'event.dataset': 'sip',
          'event.duration': 0,
          'event.end': '2016-11-26T15:09:54.571Z',
          'event.kind': 'event',
          'event.original': 'SIP/2.0 200 OK\r\n'
                            'Via: SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2189-1-0\r\n'
                            'From: "DVI4/16000" <sip:sipp@10.0.2.20:5060>;tag=1\r\n'
                            'To: test <sip:test@10.0.2.15:5060>;tag=FBcN7Xt0a8S1j\r\n'
                            'Call-ID: 1-2189@10.0.2.20\r\n'
                            'CSeq: 1 INVITE\r\n'
                            'Contact: <sip:test@10.0.2.15:5060;transport=udp>\r\n'
                            'User-Agent: FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit\r\n'
                            'Accept: application/sdp\r\n'
                            'Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, '
                            'REGISTER, REFER, NOTIFY, PUBLISH, SUBSCRIBE\r\n'
                            'Supported: timer, path, replaces\r\n'
                            'Allow-Events: talk, hold, conference, presence, as-feature-event, '
                            'dialog, line-seize, call-info, sla, include-session-description, '
                            'presence.winfo, message-summary, refer\r\n'
                            'Content-Type: application/sdp\r\n'
                            'Content-Disposition: session\r\n'
                            'Content-Length: 227\r\n'
                            'Remote-Party-ID: "test" '
                            '<sip:test@10.0.2.15>;party=calling;privacy=off;screen=no\r\n'
                            '\r\n'
                            'v=0\r\n'
                            'o=FreeSWITCH 1480147848 1480147849 IN IP4 10.0.2.15\r\n'
                            's=FreeSWITCH\r\n'
                            'c=IN IP4 10.0.2.15\r\n'
                            't=0 0\r\n'
                            'm=audio 25146 RTP/AVP 6 101\r\n'
                            'a=rtpmap:6 DVI4/16000\r\n'
                            'a=rtpmap:101 telephone-event/8000\r\n'
                            'a=fmtp:101 0-16\r\n'
                            'a=sendonly\r\n'
                            'a=ptime:20\r\n',
          'event.outcome': 'success',
          'event.reason': 'OK',
          'event.sequence': 1,
          'event.start': '2016-11-26T15:09:54.571Z',
          'event.type': ['info', 'protocol'],
          'network.application': 'sip',
          'network.community_id': '1:xDRQZvk3ErEhBDslXv1c6EKI804=',
          'network.direction': 'unknown',
          'network.iana_number': '17',
          'network.protocol': 'sip',
          'network.transport': 'udp',
          'network.type': 'ipv4',
          'related.hosts': ['10.0.2.20', '10.0.2.15'],
          'related.ip': ['10.0.2.15', '10.0.2.20'],
          'related.user': ['sipp', 'test', 'FreeSWITCH'],
          'server.ip': '10.0.2.20',
          'server.port': 5060,
          'sip.accept': 'application/sdp',
          'sip.allow': ['invite',
                        'ack',
                        'bye',
                        'cancel',
                        'options',
                        'message',
                        'info',
                        'update',
                        'register',
                        'refer',
                        'notify',
                        'publish',
                        'subscribe'],
          'sip.call_id': '1-2189@10.0.2.20',
          'sip.code': 200,
          'sip.contact.display_info': 'test',
          'sip.contact.uri.host': '10.0.2.15',
          'sip.contact.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.contact.uri.port': 5060,
          'sip.contact.uri.scheme': 'sip',
          'sip.contact.uri.username': 'test',
          'sip.content_length': 227,
          'sip.content_type': 'application/sdp',
          'sip.cseq.code': 1,
          'sip.cseq.method': 'INVITE',
          'sip.from.display_info': 'DVI4/16000',
          'sip.from.tag': '1',
          'sip.from.uri.host': '10.0.2.20',
          'sip.from.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.from.uri.port': 5060,
          'sip.from.uri.scheme': 'sip',
          'sip.from.uri.username': 'sipp',
          'sip.sdp.body.original': 'v=0\r\n'
                                   'o=FreeSWITCH 1480147848 1480147849 IN IP4 10.0.2.15\r\n'
                                   's=FreeSWITCH\r\n'
                                   'c=IN IP4 10.0.2.15\r\n'
                                   't=0 0\r\n'
                                   'm=audio 25146 RTP/AVP 6 101\r\n'
                                   'a=rtpmap:6 DVI4/16000\r\n'
                                   'a=rtpmap:101 telephone-event/8000\r\n'
                                   'a=fmtp:101 0-16\r\n'
                                   'a=sendonly\r\n'
                                   'a=ptime:20\r\n',
          'sip.sdp.connection.address': '10.0.2.15',
          'sip.sdp.connection.info': 'IN IP4 10.0.2.15',
          'sip.sdp.owner.ip': '10.0.2.15',
          'sip.sdp.owner.session_id': '1480147848',
          'sip.sdp.owner.username': 'FreeSWITCH',
          'sip.sdp.owner.version': '1480147849',
          'sip.sdp.session.name': 'FreeSWITCH',
          'sip.sdp.version': '0',
          'sip.status': 'OK',
          'sip.supported': ['timer', 'path', 'replaces'],
          'sip.to.display_info': 'test',
          'sip.to.tag': 'FBcN7Xt0a8S1j',
          'sip.to.uri.host': '10.0.2.15',
          'sip.to.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.to.uri.port': 5060,
          'sip.to.uri.scheme': 'sip',
          'sip.to.uri.username': 'test',
          'sip.type': 'response',
          'sip.user_agent.original': 'FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit',
          'sip.version': '2.0',
          'sip.via.original': ['SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2189-1-0'],
          'source.ip': '10.0.2.15',
          'source.port': 5060,
          'status': 'OK',
          'type': 'sip'},
         {'@timestamp': '2016-11-26T15:09:54.571Z',
          'client.ip': '10.0.2.20',
          'client.port': 5060,
          'destination.ip': '10.0.2.15',
          'destination.port': 5060,
          'event.action': 'sip-ack',
          'event.category': ['network'],
          'event.dataset': 'sip',
          'event.duration': 0,
          'event.end': '2016-11-26T15:09:54.571Z',
          'event.kind': 'event',
          'event.original': 'ACK sip:test@10.0.2.15:5060 SIP/2.0\r\n'
                            'Via: SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2189-1-5\r\n'
                            'From: "DVI4/16000" <sip:sipp@10.0.2.20:5060>;tag=1\r\n'
                            'To: test <sip:test@10.0.2.15:5060>;tag=FBcN7Xt0a8S1j\r\n'
                            'Call-ID: 1-2189@10.0.2.20\r\n'
                            'CSeq: 1 ACK\r\n'
                            'Contact: sip:sipp@10.0.2.20:5060\r\n'
                            'Max-Forwards: 70\r\n'
                            'Content-Length: 0\r\n'
                            '\r\n',
          'event.sequence': 1,
          'event.start': '2016-11-26T15:09:54.571Z',
          'event.type': ['info', 'protocol'],
          'network.application': 'sip',
          'network.community_id': '1:xDRQZvk3ErEhBDslXv1c6EKI804=',
          'network.direction': 'unknown',
          'network.iana_number': '17',
          'network.protocol': 'sip',
          'network.transport': 'udp',
          'network.type': 'ipv4',
          'related.hosts': ['10.0.2.15', '10.0.2.20'],
          'related.ip': ['10.0.2.20', '10.0.2.15'],
          'related.user': ['test', 'sipp'],
          'server.ip': '10.0.2.15',
          'server.port': 5060,
          'sip.call_id': '1-2189@10.0.2.20',
          'sip.contact.display_info': 'test',
          'sip.contact.uri.host': '10.0.2.15',
          'sip.contact.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.contact.uri.port': 5060,
          'sip.contact.uri.scheme': 'sip',
          'sip.contact.uri.username': 'test',
          'sip.cseq.code': 1,
          'sip.cseq.method': 'ACK',
          'sip.from.display_info': 'DVI4/16000',
          'sip.from.tag': '1',
          'sip.from.uri.host': '10.0.2.20',
          'sip.from.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.from.uri.port': 5060,
          'sip.from.uri.scheme': 'sip',
          'sip.from.uri.username': 'sipp',
          'sip.max_forwards': 70,
          'sip.method': 'ACK',
          'sip.to.display_info': 'test',
          'sip.to.tag': 'FBcN7Xt0a8S1j',
          'sip.to.uri.host': '10.0.2.15',
          'sip.to.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.to.uri.port': 5060,
          'sip.to.uri.scheme': 'sip',
          'sip.to.uri.username': 'test',
          'sip.type': 'request',
          'sip.uri.host': '10.0.2.15',
          'sip.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.uri.port': 5060,
          'sip.uri.scheme': 'sip',
          'sip.uri.username': 'test',
          'sip.version': '2.0',
          'sip.via.original': ['SIP/2.0/UDP 10.0.2.20:5060;branch=z9hG4bK-2189-1-5'],
          'source.ip': '10.0.2.20',
          'source.port': 5060,
          'status': 'OK',
          'type': 'sip'},
         {'@timestamp': '2016-11-26T15:10:03.070Z',
          'client.ip': '10.0.2.15',
          'client.port': 5060,
          'destination.ip': '10.0.2.20',
          'destination.port': 5060,
          'event.action': 'sip-bye',
          'event.category': ['network'],
          'event.dataset': 'sip',
          'event.duration': 0,
          'event.end': '2016-11-26T15:10:03.070Z',
          'event.kind': 'event',
          'event.original': 'BYE sip:sipp@10.0.2.20:5060 SIP/2.0\r\n'
                            'Via: SIP/2.0/UDP 10.0.2.15;rport;branch=z9hG4bKe00pN1veeeyHp\r\n'
                            'Max-Forwards: 70\r\n'
                            'From: test <sip:test@10.0.2.15:5060>;tag=FBcN7Xt0a8S1j\r\n'
                            'To: "DVI4/16000" <sip:sipp@10.0.2.20:5060>;tag=1\r\n'
                            'Call-ID: 1-2189@10.0.2.20\r\n'
                            'CSeq: 99750437 BYE\r\n'
                            'User-Agent: FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit\r\n'
                            'Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, '
                            'REGISTER, REFER, NOTIFY, PUBLISH, SUBSCRIBE\r\n'
                            'Supported: timer, path, replaces\r\n'
                            'Reason: Q.850;cause=16;text="NORMAL_CLEARING"\r\n'
                            'Content-Length: 0\r\n'
                            '\r\n',
          'event.sequence': 99750437,
          'event.start': '2016-11-26T15:10:03.070Z',
          'event.type': ['info', 'protocol'],
          'network.application': 'sip',
          'network.community_id': '1:xDRQZvk3ErEhBDslXv1c6EKI804=',
          'network.direction': 'unknown',
          'network.iana_number': '17',
          'network.protocol': 'sip',
          'network.transport': 'udp',
          'network.type': 'ipv4',
          'related.hosts': ['10.0.2.20', '10.0.2.15'],
          'related.ip': ['10.0.2.15', '10.0.2.20'],
          'related.user': ['sipp', 'test'],
          'server.ip': '10.0.2.20',
          'server.port': 5060,
          'sip.allow': ['invite',
                        'ack',
                        'bye',
                        'cancel',
                        'options',
                        'message',
                        'info',
                        'update',
                        'register',
                        'refer',
                        'notify',
                        'publish',
                        'subscribe'],
          'sip.call_id': '1-2189@10.0.2.20',
          'sip.cseq.code': 99750437,
          'sip.cseq.method': 'BYE',
          'sip.from.display_info': 'test',
          'sip.from.tag': 'FBcN7Xt0a8S1j',
          'sip.from.uri.host': '10.0.2.15',
          'sip.from.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.from.uri.port': 5060,
          'sip.from.uri.scheme': 'sip',
          'sip.from.uri.username': 'test',
          'sip.max_forwards': 70,
          'sip.method': 'BYE',
          'sip.supported': ['timer', 'path', 'replaces'],
          'sip.to.display_info': 'DVI4/16000',
          'sip.to.tag': '1',
          'sip.to.uri.host': '10.0.2.20',
          'sip.to.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.to.uri.port': 5060,
          'sip.to.uri.scheme': 'sip',
          'sip.to.uri.username': 'sipp',
          'sip.type': 'request',
          'sip.uri.host': '10.0.2.20',
          'sip.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.uri.port': 5060,
          'sip.uri.scheme': 'sip',
          'sip.uri.username': 'sipp',
          'sip.user_agent.original': 'FreeSWITCH-mod_sofia/1.6.12-20-b91a0a6~64bit',
          'sip.version': '2.0',
          'sip.via.original': ['SIP/2.0/UDP 10.0.2.15;rport;branch=z9hG4bKe00pN1veeeyHp'],
          'source.ip': '10.0.2.15',
          'source.port': 5060,
          'status': 'OK',
          'type': 'sip'},
         {'@timestamp': '2016-11-26T15:10:03.071Z',
          'client.ip': '10.0.2.20',
          'client.port': 5060,
          'destination.ip': '10.0.2.15',
          'destination.port': 5060,
          'event.action': 'sip-bye',
          'event.category': ['network'],
          'event.dataset': 'sip',
          'event.duration': 0,
          'event.end': '2016-11-26T15:10:03.071Z',
          'event.kind': 'event',
          'event.original': 'SIP/2.0 200 OK\r\n'
                            'Via: SIP/2.0/UDP 10.0.2.15;rport;branch=z9hG4bKe00pN1veeeyHp\r\n'
                            'From: test <sip:test@10.0.2.15:5060>;tag=FBcN7Xt0a8S1j\r\n'
                            'To: "DVI4/16000" <sip:sipp@10.0.2.20:5060>;tag=1\r\n'
                            'Call-ID: 1-2189@10.0.2.20\r\n'
                            'CSeq: 99750437 BYE\r\n'
                            'Contact: <sip:10.0.2.20:5060;transport=UDP>\r\n'
                            'Content-Length: 0\r\n'
                            '\r\n',
          'event.outcome': 'success',
          'event.reason': 'OK',
          'event.sequence': 99750437,
          'event.start': '2016-11-26T15:10:03.071Z',
          'event.type': ['info', 'protocol'],
          'network.application': 'sip',
          'network.community_id': '1:xDRQZvk3ErEhBDslXv1c6EKI804=',
          'network.direction': 'unknown',
          'network.iana_number': '17',
          'network.protocol': 'sip',
          'network.transport': 'udp',
          'network.type': 'ipv4',
          'related.hosts': ['10.0.2.15', '10.0.2.20'],
          'related.ip': ['10.0.2.20', '10.0.2.15'],
          'related.user': ['test', 'sipp'],
          'server.ip': '10.0.2.15',
          'server.port': 5060,
          'sip.call_id': '1-2189@10.0.2.20',
          'sip.code': 200,
          'sip.contact.display_info': 'DVI4/16000',
          'sip.contact.uri.host': '10.0.2.20',
          'sip.contact.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.contact.uri.port': 5060,
          'sip.contact.uri.scheme': 'sip',
          'sip.contact.uri.username': 'sipp',
          'sip.cseq.code': 99750437,
          'sip.cseq.method': 'BYE',
          'sip.from.display_info': 'test',
          'sip.from.tag': 'FBcN7Xt0a8S1j',
          'sip.from.uri.host': '10.0.2.15',
          'sip.from.uri.original': 'sip:test@10.0.2.15:5060',
          'sip.from.uri.port': 5060,
          'sip.from.uri.scheme': 'sip',
          'sip.from.uri.username': 'test',
          'sip.status': 'OK',
          'sip.to.display_info': 'DVI4/16000',
          'sip.to.tag': '1',
          'sip.to.uri.host': '10.0.2.20',
          'sip.to.uri.original': 'sip:sipp@10.0.2.20:5060',
          'sip.to.uri.port': 5060,
          'sip.to.uri.scheme': 'sip',
          'sip.to.uri.username': 'sipp',
          'sip.type': 'response',
          'sip.version': '2.0',
          'sip.via.original': ['SIP/2.0/UDP 10.0.2.15;rport;branch=z9hG4bKe00pN1veeeyHp'],
          'source.ip': '10.0.2.20',
          'source.port': 5060,
          'status': 'OK',
          'type': 'sip'}],
 'sip_authenticated_register': [{'@timestamp': '2005-07-04T09:39:16.235Z',
                                 'client.ip': '192.168.1.2',
                                 'client.port': 5060,
                                 'destination.ip': '212.242.33.35',
                                 'destination.port': 5060,
                                 'event.action': 'sip-register',
                                 'event.category': ['network', 'authentication'],
                                 'event.dataset': 'sip',
                                 'event.duration': 0,
                                 'event.end': '2005-07-04T09:39:16.235Z',
                                 'event.kind': 'event',
                                 'event.original': 'REGISTER sip:sip.cybercity.dk SIP/2.0\r\n'
                                                   'Via: SIP/2.0/UDP '
                                                   '192.168.1.2;branch=z9hG4bKnp112903503-43a64480192.168.1.2;rport\r\n'
                                                   'From: '
                                                   '<sip:voi18062@sip.cybercity.dk>;tag=6bac55c\r\n'
                                                   'To: <sip:voi18062@sip.cybercity.dk>\r\n'
                                                   'Call-ID: '
                                                   '578222729-4665d775@578222732-4665d772\r\n'
                                                   'Contact:  '
                                                   '<sip:voi18062@192.168.1.2:5060;line=aca6b97ca3f5e51a>;expires=1200;q=0.500\r\n'
                                                   'Expires: 1200\r\n'
                                                   'CSeq: 75 REGISTER\r\n'
                                                   'Content-Length: 0\r\n'
                                                   'Authorization: Digest '
                                                   'username="voi18062",realm="sip.cybercity.dk",uri="sip:192.168.1.2",nonce="1701b22972b90f440c3e4eb250842bb",opaque="1701a1351f70795",nc="00000001",response="79a0543188495d288c9ebbe0c881abdc"\r\n'
                                                   'Max-Forwards: 70\r\n'
                                                   'User-Agent: Nero SIPPS IP Phone Version '
                                                   '2.0.51.16\r\n'
                                                   '\r\n',
                                 'event.sequence': 75,
                                 'event.start': '2005-07-04T09:39:16.235Z',
                                 'event.type': ['info', 'protocol'],
                                 'network.application': 'sip',
                                 'network.community_id': '1:dOa61R2NaaJsJlcFAiMIiyXX+Kk=',
                                 'network.direction': 'unknown',
                                 'network.iana_number': '17',
                                 'network.protocol': 'sip',
                                 'network.transport': 'udp',
                                 'network.type': 'ipv4',
                                 'related.hosts': ['sip.cybercity.dk'],
                                 'related.ip': ['192.168.1.2', '212.242.33.35'],
                                 'related.user': ['voi18062'],
                                 'server.ip': '212.242.33.35',
                                 'server.port': 5060,
                                 'sip.auth.realm': 'sip.cybercity.dk',
                                 'sip.auth.scheme': 'Digest',
                                 'sip.auth.uri.host': '192.168.1.2',
                                 'sip.auth.uri.original': 'sip:192.168.1.2',
                                 'sip.auth.uri.scheme': 'sip',
                                 'sip.call_id': '578222729-4665d775@578222732-4665d772',
                                 'sip.contact.uri.host': 'sip.cybercity.dk',
                                 'sip.contact.uri.original': 'sip:voi18062@sip.cybercity.dk',
                                 'sip.contact.uri.scheme': 'sip',
                                 'sip.contact.uri.username': 'voi18062',
                                 'sip.cseq.code': 75,
                                 'sip.cseq.method': 'REGISTER',
                                 'sip.from.tag': '6bac55c',
                                 'sip.from.uri.host': 'sip.cybercity.dk',
                                 'sip.from.uri.original': 'sip:voi18062@sip.cybercity.dk',
                                 'sip.from.uri.scheme': 'sip',
                                 'sip.from.uri.username': 'voi18062',
                                 'sip.max_forwards': 70,
                                 'sip.method': 'REGISTER',
                                 'sip.to.uri.host': 'sip.cybercity.dk',
                                 'sip.to.uri.original': 'sip:voi18062@sip.cybercity.dk',
                                 'sip.to.uri.scheme': 'sip',
                                 'sip.to.uri.username': 'voi18062',
                                 'sip.type': 'request',
                                 'sip.uri.host': 'sip.cybercity.dk',
                                 'sip.uri.original': 'sip:sip.cybercity.dk',
                                 'sip.uri.scheme': 'sip',
                                 'sip.user_agent.original': 'Nero SIPPS IP Phone Version 2.0.51.16',
                                 'sip.version': '2.0',
                                 'sip.via.original': ['SIP/2.0/UDP '
                                                      '192.168.1.2;branch=z9hG4bKnp112903503-43a64480192.168.1.2;rport'],
                                 'source.ip': '192.168.1.2',
                                 'source.port': 5060,
                                 'status': 'OK',
                                 'type': 'sip',
                                 'user.name': 'voi18062'},
                                {'@timestamp': '2005-07-04T09:39:16.380Z',
                                 'client.ip': '212.242.33.35',
                                 'client.port': 5060,
                                 'destination.ip': '192.168.1.2',
                                 'destination.port': 5060,
                                 'event.action': 'sip-register',
                                 'event.category': ['network'],
                                 'event.dataset': 'sip',
                                 'event.duration': 0,
                                 'event.end': '2005-07-04T09:39:16.380Z',
                                 'event.kind': 'event',
                                 'event.original': 'SIP/2.0 100 Trying\r\n'
                                                   'Call-ID: '
                                                   '578222729-4665d775@578222732-4665d772\r\n'
                                                   'CSeq: 75 REGISTER\r\n'
                                                   'From: '
                                                   '<sip:voi18062@sip.cybercity.dk>;tag=6bac55c\r\n'
                                                   'To: <sip:voi18062@sip.cybercity.dk>\r\n'
                                                   'Via: SIP/2.0/UDP '
                                                   '192.168.1.2;received=80.230.219.70;rport=5060;branch=z9hG4bKnp112903503-43a64480192.168.1.2\r\n'
                                                   'Content-Length: 0\r\n'
                                                   '\r\n',
                                 'event.reason': 'Trying',
                                 'event.sequence': 75,
                                 'event.start': '2005-07-04T09:39:16.380Z',
                                 'event.type': ['info', 'protocol'],
                                 'network.application': 'sip',
                                 'network.community_id': '1:dOa61R2NaaJsJlcFAiMIiyXX+Kk=',
                                 'network.direction': 'unknown',
                                 'network.iana_number': '17',
                                 'network.protocol': 'sip',
                                 'network.transport': 'udp',
                                 'network.type': 'ipv4',
                                 'related.hosts': ['sip.cybercity.dk'],
                                 'related.ip': ['212.242.33.35', '192.168.1.2'],
                                 'related.user': ['voi18062'],
                                 'server.ip': '192.168.1.2',
                                 'server.port': 5060,
                                 'sip.call_id': '578222729-4665d775@578222732-4665d772',
                                 'sip.code': 100,
                                 'sip.cseq.code': 75,
                                 'sip.cseq.method': 'REGISTER',
                                 'sip.from.tag': '6bac55c',
                                 'sip.from.uri.host': 'sip.cybercity.dk',
                                 'sip.from.uri.original': 'sip:voi18062@sip.cybercity.dk',
                                 'sip.from.uri.scheme': 'sip',
                                 'sip.from.uri.username': 'voi18062',
                                 'sip.status': 'Trying',
                                 'sip.to.uri.host': 'sip.cybercity.dk',
                                 'sip.to.uri.original': 'sip:voi18062@sip.cybercity.dk',
                                 'sip.to.uri.scheme': 'sip',
                                 'sip.to.uri.username': 'voi18062',
                                 'sip.type': 'response',
                                 'sip.version': '2.0',
                                 'sip.via.original': ['SIP/2.0/UDP '
                                                      '192.168.1.2;received=80.230.219.70;rport=5060;branch=z9hG4bKnp112903503-43a64480192.168.1.2'],
                                 'source.ip': '212.242.33.35',
                                 'source.port': 5060,
                                 'status': 'OK',
                                 'type': 'sip'},
                                {'@timestamp': '2005-07-04T09:39:16.406Z',
                                 'client.ip': '212.242.33.35',
                                 'client.port': 5060,
                                 'destination.ip': '192.168.1.2',
                                 'destination.port': 5060,
                                 'event.action': 'sip-register',
                                 'event.category': ['network'],
                                 'event.dataset': 'sip',
                                 'event.duration': 0,
                                 'event.end': '2005-07-04T09:39:16.406Z',
                                 'event.kind': 'event',
                                 'event.original': 'SIP/2.0 200 OK\r\n'
                                                   'Call-ID: '
                                                   '578222729-4665d775@578222732-4665d772\r\n'
                                                   'Contact: '
                                                   '<sip:voi18062@192.168.1.2:5060;line=aca6b97ca3f5e51a>;q=0.500;expires=1200\r\n'
                                                   'CSeq: 75 REGISTER\r\n'
                                                   'From: '
                                                   '<sip:voi18062@sip.cybercity.dk>;tag=6bac55c\r\n'
                                                   'P-Associated-URI: '
                                                   '<sip:35104723@sip.cybercity.dk>\r\n'
                                                   'To: '
                                                   '<sip:voi18062@sip.cybercity.dk>;tag=00-04081-1701b256-5586b7324\r\n'
                                                   'Via: SIP/2.0/UDP '
                                                   '192.168.1.2;received=80.230.219.70;rport=5060;branch=z9hG4bKnp112903503-43a64480192.168.1.2\r\n'
                                                   'Content-Length: 0\r\n'
                                                   '\r\n',
                                 'event.outcome': 'success',
                                 'event.reason': 'OK',
                                 'event.sequence': 75,
                                 'event.start': '2005-07-04T09:39:16.406Z',
                                 'event.type': ['info', 'protocol'],
                                 'network.application': 'sip',
                                 'network.community_id': '1:dOa61R2NaaJsJlcFAiMIiyXX+Kk=',
                                 'network.direction': 'unknown',
                                 'network.iana_number': '17',
                                 'network.protocol': 'sip',
                                 'network.transport': 'udp',
                                 'network.type': 'ipv4',
                                 'related.hosts': ['sip.cybercity.dk>', 'sip.cybercity.dk'],
                                 'related.ip': ['212.242.33.35', '192.168.1.2'],
                                 'related.user': ['35104723', 'voi18062'],
                                 'server.ip': '192.168.1.2',
                                 'server.port': 5060,
                                 'sip.call_id': '578222729-4665d775@578222732-4665d772',
                                 'sip.code': 200,
                                 'sip.contact.uri.host': 'sip.cybercity.dk',
                                 'sip.contact.uri.original': 'sip:voi18062@sip.cybercity.dk',
                                 'sip.contact.uri.scheme': 'sip',
                                 'sip.contact.uri.username': 'voi18062',
                                 'sip.cseq.code': 75,
                                 'sip.cseq.method': 'REGISTER',
                                 'sip.from.tag': '6bac55c',
                                 'sip.from.uri.host': 'sip.cybercity.dk',
                                 'sip.from.uri.original': 'sip:voi18062@sip.cybercity.dk',
                                 'sip.from.uri.scheme': 'sip',
                                 'sip.from.uri.username': 'voi18062',
                                 'sip.private.uri.host': 'sip.cybercity.dk>',
                                 'sip.private.uri.original': '<sip:35104723@sip.cybercity.dk>',
                                 'sip.private.uri.scheme': '<sip',
                                 'sip.private.uri.username': '35104723',
                                 'sip.status': 'OK',
                                 'sip.to.tag': '00-04081-1701b256-5586b7324',
                                 'sip.to.uri.host': 'sip.cybercity.dk',
                                 'sip.to.uri.original': 'sip:voi18062@sip.cybercity.dk',
                                 'sip.to.uri.scheme': 'sip',
                                 'sip.to.uri.username': 'voi18062',
                                 'sip.type': 'response',
                                 'sip.version': '2.0',
                                 'sip.via.original': ['SIP/2.0/UDP '
                                                      '192.168.1.2;received=80.230.219.70;rport=5060;branch=z9hG4bKnp112903503-43a64480192.168.1.2'],
                                 'source.ip': '212.242.33.35',
                                 'source.port': 5060,
                                 'status': 'OK',
                                 'type': 'sip'}],
 'sip_tcp': [{'@timestamp': '2011-07-28T12:54:46.562Z',
              'client.ip': '10.33.6.100',
              'client.port': 64802,
              'destination.ip': '10.33.6.101',
              'destination.port': 5060,
              'event.action': 'sip-invite',
              'event.category': ['network'],
              'event.dataset': 'sip',
              'event.duration': 0,
              'event.end': '2011-07-28T12:54:46.562Z',
              'event.kind': 'event',
              'event.original': 'INVITE sip:201@10.33.6.101;user=phone SIP/2.0\r\n'
                                'Via: SIP/2.0/TCP 10.33.6.100;branch=z9hG4bKac1589375893;alias\r\n'
                                'Max-Forwards: 70\r\n'
                                'From: <sip:101@10.33.6.100>;tag=1c1589367133\r\n'
                                'To: <sip:201@10.33.6.101;user=phone>\r\n'
                                'Call-ID: 158936656982201062716@10.33.6.100\r\n'
                                'CSeq: 1 INVITE\r\n'
                                'Contact: <sip:101@10.33.6.100:5060;transport=tcp>\r\n'
                                'Supported: em,timer,replaces,path,resource-priority,sdp-anat\r\n'
                                'Allow: '
                                'REGISTER,OPTIONS,INVITE,ACK,CANCEL,BYE,NOTIFY,PRACK,REFER,INFO,SUBSCRIBE,UPDATE\r\n'
                                'User-Agent: IPP/v.6.20A.027.012\r\n'
                                'Content-Type: application/sdp\r\n'
                                'Content-Length: 228\r\n'
                                '\r\n'
                                'v=0\r\n'
                                'o=IPP 1589356486 1589356361 IN IP4 10.33.6.100\r\n'
                                's=Phone-Call\r\n'
                                'c=IN IP4 10.33.6.100\r\n'
                                't=0 0\r\n'
                                'm=audio 6000 RTP/AVP 8 13 101\r\n'
                                'a=rtpmap:8 PCMA/8000\r\n'
                                'a=rtpmap:101 telephone-event/8000\r\n'
                                'a=fmtp:101 0-15,16\r\n'
                                'a=ptime:20\r\n'
                                'a=sendrecv\r\n',
              'event.sequence': 1,
              'event.start': '2011-07-28T12:54:46.562Z',
              'event.type': ['info', 'protocol'],
              'network.application': 'sip',
              'network.community_id': '1:nWlU53kb2GqnNe1VDWV69Wz6OJc=',
              'network.direction': 'unknown',
              'network.iana_number': '17',
              'network.protocol': 'sip',
              'network.transport': 'tcp',
              'network.type': 'ipv4',
              'related.hosts': ['10.33.6.101', '10.33.6.100'],
              'related.ip': ['10.33.6.100', '10.33.6.101'],
              'related.user': ['201', '101', 'IPP'],
              'server.ip': '10.33.6.101',
              'server.port': 5060,
              'sip.allow': ['register',
                            'options',
                            'invite',
                            'ack',
                            'cancel',
                            'bye',
                            'notify',
                            'prack',
                            'refer',
                            'info',
                            'subscribe',
                            'update'],
              'sip.call_id': '158936656982201062716@10.33.6.100',
              'sip.contact.uri.host': '10.33.6.101',
              'sip.contact.uri.original': 'sip:201@10.33.6.101;user=phone',
              'sip.contact.uri.scheme': 'sip',
              'sip.contact.uri.username': '201',
              'sip.content_length': 228,
              'sip.content_type': 'application/sdp',
              'sip.cseq.code': 1,
              'sip.cseq.method': 'INVITE',
              'sip.from.tag': '1c1589367133',
              'sip.from.uri.host': '10.33.6.100',
              'sip.from.uri.original': 'sip:101@10.33.6.100',
              'sip.from.uri.scheme': 'sip',
              'sip.from.uri.username': '101',
              'sip.max_forwards': 70,
              'sip.method': 'INVITE',
              'sip.sdp.body.original': 'v=0\r\n'
                                       'o=IPP 1589356486 1589356361 IN IP4 10.33.6.100\r\n'
                                       's=Phone-Call\r\n'
                                       'c=IN IP4 10.33.6.100\r\n'
                                       't=0 0\r\n'
                                       'm=audio 6000 RTP/AVP 8 13 101\r\n'
                                       'a=rtpmap:8 PCMA/8000\r\n'
                                       'a=rtpmap:101 telephone-event/8000\r\n'
                                       'a=fmtp:101 0-15,16\r\n'
                                       'a=ptime:20\r\n'
                                       'a=sendrecv\r\n',
              'sip.sdp.connection.address': '10.33.6.100',
              'sip.sdp.connection.info': 'IN IP4 10.33.6.100',
              'sip.sdp.owner.ip': '10.33.6.100',
              'sip.sdp.owner.session_id': '1589356486',
              'sip.sdp.owner.username': 'IPP',
              'sip.sdp.owner.version': '1589356361',
              'sip.sdp.session.name': 'Phone-Call',
              'sip.sdp.version': '0',
              'sip.supported': ['em', 'timer', 'replaces', 'path', 'resource-priority', 'sdp-anat'],
              'sip.to.uri.host': '10.33.6.101',
              'sip.to.uri.original': 'sip:201@10.33.6.101;user=phone',
              'sip.to.uri.scheme': 'sip',
              'sip.to.uri.username': '201',
              'sip.type': 'request',
              'sip.uri.host': '10.33.6.101',
              'sip.uri.original': 'sip:201@10.33.6.101;user=phone',
              'sip.uri.scheme': 'sip',
              'sip.uri.username': '201',
              'sip.user_agent.original': 'IPP/v.6.20A.027.012',
              'sip.version': '2.0',
              'sip.via.original': ['SIP/2.0/TCP 10.33.6.100;branch=z9hG4bKac1589375893;alias'],
              'source.ip': '10.33.6.100',
              'source.port': 64802,
              'status': 'OK',
              'type': 'sip'},
             {'@timestamp': '2011-07-28T12:54:46.602Z',
              'client.ip': '10.33.6.101',
              'client.port': 5060,
              'destination.ip': '10.33.6.100',
              'destination.port': 64802,
              'event.action': 'sip-invite',
              'event.category': ['network'],
              'event.dataset': 'sip',
              'event.duration': 0,
              'event.end': '2011-07-28T12:54:46.602Z',
              'event.kind': 'event',
              'event.original': 'SIP/2.0 100 Trying\r\n'
                                'Via: SIP/2.0/TCP 10.33.6.100;branch=z9hG4bKac1589375893;alias\r\n'
                                'From: <sip:101@10.33.6.100>;tag=1c1589367133\r\n'
                                'To: <sip:201@10.33.6.101;user=phone>;tag=1c342958875\r\n'
                                'Call-ID: 158936656982201062716@10.33.6.100\r\n'
                                'CSeq: 1 INVITE\r\n'
                                'Supported: '
                                'em,timer,replaces,path,early-session,resource-priority\r\n'
                                'Allow: '
                                'REGISTER,OPTIONS,INVITE,ACK,CANCEL,BYE,NOTIFY,PRACK,REFER,INFO,SUBSCRIBE,UPDATE\r\n'
                                'Server: GW/v.6.20A.027.012\r\n'
                                'Content-Length: 0\r\n'
                                '\r\n',
              'event.reason': 'Trying',
              'event.sequence': 1,
              'event.start': '2011-07-28T12:54:46.602Z',
              'event.type': ['info', 'protocol'],
              'network.application': 'sip',
              'network.community_id': '1:nWlU53kb2GqnNe1VDWV69Wz6OJc=',
              'network.direction': 'unknown',
              'network.iana_number': '17',
              'network.protocol': 'sip',
              'network.transport': 'tcp',
              'network.type': 'ipv4',
              'related.hosts': ['10.33.6.100', '10.33.6.101'],
              'related.ip': ['10.33.6.101', '10.33.6.100'],
              'related.user': ['101', '201'],
              'server.ip': '10.33.6.100',
              'server.port': 64802,
              'sip.allow': ['register',
                            'options',
                            'invite',
                            'ack',
                            'cancel',
                            'bye',
                            'notify',
                            'prack',
                            'refer',
                            'info',
                            'subscribe',
                            'update'],
              'sip.call_id': '158936656982201062716@10.33.6.100',
              'sip.code': 100,
              'sip.cseq.code': 1,
              'sip.cseq.method': 'INVITE',
              'sip.from.tag': '1c1589367133',
              'sip.from.uri.host': '10.33.6.100',
              'sip.from.uri.original': 'sip:101@10.33.6.100',
              'sip.from.uri.scheme': 'sip',
              'sip.from.uri.username': '101',
              'sip.status': 'Trying',
              'sip.supported': ['em',
                                'timer',
                                'replaces',
                                'path',
                                'early-session',
                                'resource-priority'],
              'sip.to.tag': '1c342958875',
              'sip.to.uri.host': '10.33.6.101',
              'sip.to.uri.original': 'sip:201@10.33.6.101;user=phone',
              'sip.to.uri.scheme': 'sip',
              'sip.to.uri.username': '201',
              'sip.type': 'response',
              'sip.version': '2.0',
              'sip.via.original': ['SIP/2.0/TCP 10.33.6.100;branch=z9hG4bKac1589375893;alias'],
              'source.ip': '10.33.6.101',
              'source.port': 5060,
              'status': 'OK',
              'type': 'sip'},
             {'@timestamp': '2011-07-28T12:54:46.621Z',
              'client.ip': '10.33.6.101',
              'client.port': 5060,
              'destination.ip': '10.33.6.100',
              'destination.port': 64802,
              'event.action': 'sip-invite',
              'event.category': ['network'],
              'event.dataset': 'sip',
              'event.duration': 0,
              'event.end': '2011-07-28T12:54:46.621Z',
              'event.kind': 'event',
              'event.original': 'SIP/2.0 180 Ringing\r\n'
                                'Via: SIP/2.0/TCP 10.33.6.100;branch=z9hG4bKac1589375893;alias\r\n'
                                'From: <sip:101@10.33.6.100>;tag=1c1589367133\r\n'
                                'To: <sip:201@10.33.6.101;user=phone>;tag=1c342958875\r\n'
                                'Call-ID: 158936656982201062716@10.33.6.100\r\n'
                                'CSeq: 1 INVITE\r\n'
                                'Contact: <sip:201@10.33.6.101:5060;transport=tcp>\r\n'
                                'Supported: '
                                'em,timer,replaces,path,early-session,resource-priority\r\n'
                                'Allow: '
                                'REGISTER,OPTIONS,INVITE,ACK,CANCEL,BYE,NOTIFY,PRACK,REFER,INFO,SUBSCRIBE,UPDATE\r\n'
                                'Server: GW/v.6.20A.027.012\r\n'
                                'Content-Length: 0\r\n'
                                '\r\n',
              'event.reason': 'Ringing',
              'event.sequence': 1,
              'event.start': '2011-07-28T12:54:46.621Z',
              'event.type': ['info', 'protocol'],
              'network.application': 'sip',
              'network.community_id': '1:nWlU53kb2GqnNe1VDWV69Wz6OJc=',
              'network.direction': 'unknown',
              'network.iana_number': '17',
              'network.protocol': 'sip',
              'network.transport': 'tcp',
              'network.type': 'ipv4',
              'related.hosts': ['10.33.6.100', '10.33.6.101'],
              'related.ip': ['10.33.6.101', '10.33.6.100'],
              'related.user': ['101', '201'],
              'server.ip': '10.33.6.100',
              'server.port': 64802,
              'sip.allow': ['register',
                            'options',
                            'invite',
                            'ack',
                            'cancel',
                            'bye',
                            'notify',
                            'prack',
                            'refer',
                            'info',
                            'subscribe',
                            'update'],
              'sip.call_id': '158936656982201062716@10.33.6.100',
              'sip.code': 180,
              'sip.contact.uri.host': '10.33.6.101',
              'sip.contact.uri.original': 'sip:201@10.33.6.101;user=phone',
              'sip.contact.uri.scheme': 'sip',
              'sip.contact.uri.username': '201',
              'sip.cseq.code': 1,
              'sip.cseq.method': 'INVITE',
              'sip.from.tag': '1c1589367133',
              'sip.from.uri.host': '10.33.6.100',
              'sip.from.uri.original': 'sip:101@10.33.6.100',
              'sip.from.uri.scheme': 'sip',
              'sip.from.uri.username': '101',
              'sip.status': 'Ringing',
              'sip.supported': ['em',
                                'timer',
                                'replaces',
                                'path',
                                'early-session',
                                'resource-priority'],
              'sip.to.tag': '1c342958875',
              'sip.to.uri.host': '10.33.6.101',
              'sip.to.uri.original': 'sip:201@10.33.6.101;user=phone',
              'sip.to.uri.scheme': 'sip',
              'sip.to.uri.username': '201',
              'sip.type': 'response',
              'sip.version': '2.0',
              'sip.via.original': ['SIP/2.0/TCP 10.33.6.100;branch=z9hG4bKac1589375893;alias'],
              'source.ip': '10.33.6.101',
              'source.port': 5060,
              'status': 'OK',
              'type': 'sip'},
             {'@timestamp': '2011-07-28T12:54:50.905Z',
              'client.ip': '10.33.6.101',
              'client.port': 5060,
              'destination.ip': '10.33.6.100',
              'destination.port': 64802,
              'event.action': 'sip-invite',
              'event.category': ['network'],
              'event.dataset': 'sip',
              'event.duration': 0,
              'event.end': '2011-07-28T12:54:50.905Z',
              'event.kind': 'event',
              'event.original': 'SIP/2.0 200 OK\r\n'
                                'Via: SIP/2.0/TCP 10.33.6.100;branch=z9hG4bKac1589375893;alias\r\n'
                                'From: <sip:101@10.33.6.100>;tag=1c1589367133\r\n'
                                'To: <sip:201@10.33.6.101;user=phone>;tag=1c342958875\r\n'
                                'Call-ID: 158936656982201062716@10.33.6.100\r\n'
                                'CSeq: 1 INVITE\r\n'
                                'Contact: <sip:201@10.33.6.101:5060;transport=tcp>\r\n'
                                'Supported: '
                                'em,timer,replaces,path,early-session,resource-priority\r\n'
                                'Allow: '
                                'REGISTER,OPTIONS,INVITE,ACK,CANCEL,BYE,NOTIFY,PRACK,REFER,INFO,SUBSCRIBE,UPDATE\r\n'
                                'Server: GW/v.6.20A.027.012\r\n'
                                'Content-Type: application/sdp\r\n'
                                'Content-Length: 225\r\n'
                                '\r\n'
                                'v=0\r\n'
                                'o=GW 343007640 343007510 IN IP4 10.33.6.101\r\n'
                                's=Phone-Call\r\n'
                                'c=IN IP4 10.33.6.101\r\n'
                                't=0 0\r\n'
                                'm=audio 6050 RTP/AVP 8 13 101\r\n'
                                'a=rtpmap:8 PCMA/8000\r\n'
                                'a=rtpmap:101 telephone-event/8000\r\n'
                                'a=fmtp:101 0-15,16\r\n'
                                'a=ptime:20\r\n'
                                'a=sendrecv\r\n',
              'event.outcome': 'success',
              'event.reason': 'OK',
              'event.sequence': 1,
              'event.start': '2011-07-28T12:54:50.905Z',
              'event.type': ['info', 'protocol'],
              'network.application': 'sip',
              'network.community_id': '1:nWlU53kb2GqnNe1VDWV69Wz6OJc=',
              'network.direction': 'unknown',
              'network.iana_number': '17',
              'network.protocol': 'sip',
              'network.transport': 'tcp',
              'network.type': 'ipv4',
              'related.hosts': ['10.33.6.100', '10.33.6.101'],
              'related.ip': ['10.33.6.101', '10.33.6.100'],
              'related.user': ['101', '201', 'GW'],
              'server.ip': '10.33.6.100',
              'server.port': 64802,
              'sip.allow': ['register',
                            'options',
                            'invite',
                            'ack',
                            'cancel',
                            'bye',
                            'notify',
                            'prack',
                            'refer',
                            'info',
                            'subscribe',
                            'update'],
              'sip.call_id': '158936656982201062716@10.33.6.100',
              'sip.code': 200,
              'sip.contact.uri.host': '10.33.6.101',
              'sip.contact.uri.original': 'sip:201@10.33.6.101;user=phone',
              'sip.contact.uri.scheme': 'sip',
              'sip.contact.uri.username': '201',
              'sip.content_length': 225,
              'sip.content_type': 'application/sdp',
              'sip.cseq.code': 1,
              'sip.cseq.method': 'INVITE',
              'sip.from.tag': '1c1589367133',
              'sip.from.uri.host': '10.33.6.100',
              'sip.from.uri.original': 'sip:101@10.33.6.100',
              'sip.from.uri.scheme': 'sip',
              'sip.from.uri.username': '101',
              'sip.sdp.body.original': 'v=0\r\n'
                                       'o=GW 343007640 343007510 IN IP4 10.33.6.101\r\n'
                                       's=Phone-Call\r\n'
                                       'c=IN IP4 10.33.6.101\r\n'
                                       't=0 0\r\n'
                                       'm=audio 6050 RTP/AVP 8 13 101\r\n'
                                       'a=rtpmap:8 PCMA/8000\r\n'
                                       'a=rtpmap:101 telephone-event/8000\r\n'
                                       'a=fmtp:101 0-15,16\r\n'
                                       'a=ptime:20\r\n'
                                       'a=sendrecv\r\n',
              'sip.sdp.connection.address': '10.33.6.101',
              'sip.sdp.connection.info': 'IN IP4 10.33.6.101',
              'sip.sdp.owner.ip': '10.33.6.101',
              'sip.sdp.owner.session_id': '343007640',
              'sip.sdp.owner.username': 'GW',
              'sip.sdp.owner.version': '343007510',
              'sip.sdp.session.name': 'Phone-Call',
              'sip.sdp.version': '0',
              'sip.status': 'OK',
              'sip.supported': ['em',
                                'timer',
                                'replaces',
                                'path',
                                'early-session',
                                'resource-priority'],
              'sip.to.tag': '1c342958875',
              'sip.to.uri.host': '10.33.6.101',
              'sip.to.uri.original': 'sip:201@10.33.6.101;user=phone',
              'sip.to.uri.scheme': 'sip',
              'sip.to.uri.username': '201',
              'sip.type': 'response',
              'sip.version': '2.0',
              'sip.via.original': ['SIP/2.0/TCP 10.33.6.100;branch=z9hG4bKac1589375893;alias'],
              'source.ip': '10.33.6.101',
              'source.port': 5060,
              'status': 'OK',
              'type': 'sip'},
             {'@timestamp': '2011-07-28T12:54:50.933Z',
              'client.ip': '10.33.6.100',
              'client.port': 64802,
              'destination.ip': '10.33.6.101',
              'destination.port': 5060,
              'event.action': 'sip-ack',
              'event.category': ['network'],
              'event.dataset': 'sip',
              'event.duration': 0,
              'event.end': '2011-07-28T12:54:50.933Z',
              'event.kind': 'event',
              'event.original': 'ACK sip:201@10.33.6.101:5060;transport=tcp SIP/2.0\r\n'
                                'Via: SIP/2.0/TCP 10.33.6.100;branch=z9hG4bKac1600323074;alias\r\n'
                                'Max-Forwards: 70\r\n'
                                'From: <sip:101@10.33.6.100>;tag=1c1589367133\r\n'
                                'To: <sip:201@10.33.6.101;user=phone>;tag=1c342958875\r\n'
                                'Call-ID: 158936656982201062716@10.33.6.100\r\n'
                                'CSeq: 1 ACK\r\n'
                                'Contact: <sip:101@10.33.6.100:5060;transport=tcp>\r\n'
                                'Supported: em,timer,replaces,path,resource-priority\r\n'
                                'Allow: '
                                'REGISTER,OPTIONS,INVITE,ACK,CANCEL,BYE,NOTIFY,PRACK,REFER,INFO,SUBSCRIBE,UPDATE\r\n'
                                'User-Agent: IPP/v.6.20A.027.012\r\n'
                                'Content-Length: 0\r\n'
                                '\r\n',
              'event.sequence': 1,
              'event.start': '2011-07-28T12:54:50.933Z',
              'event.type': ['info', 'protocol'],
              'network.application': 'sip',
              'network.community_id': '1:nWlU53kb2GqnNe1VDWV69Wz6OJc=',
              'network.direction': 'unknown',
              'network.iana_number': '17',
              'network.protocol': 'sip',
              'network.transport': 'tcp',
              'network.type': 'ipv4',
              'related.hosts': ['10.33.6.101', '10.33.6.100'],
              'related.ip': ['10.33.6.100', '10.33.6.101'],
              'related.user': ['201', '101'],
              'server.ip': '10.33.6.101',
              'server.port': 5060,
              'sip.allow': ['register',
                            'options',
                            'invite',
                            'ack',
                            'cancel',
                            'bye',
                            'notify',
                            'prack',
                            'refer',
                            'info',
                            'subscribe',
                            'update'],
              'sip.call_id': '158936656982201062716@10.33.6.100',
              'sip.contact.uri.host': '10.33.6.101',
              'sip.contact.uri.original': 'sip:201@10.33.6.101;user=phone',
              'sip.contact.uri.scheme': 'sip',
              'sip.contact.uri.username': '201',
              'sip.cseq.code': 1,
              'sip.cseq.method': 'ACK',
              'sip.from.tag': '1c1589367133',
              'sip.from.uri.host': '10.33.6.100',
              'sip.from.uri.original': 'sip:101@10.33.6.100',
              'sip.from.uri.scheme': 'sip',
              'sip.from.uri.username': '101',
              'sip.max_forwards': 70,
              'sip.method': 'ACK',
              'sip.supported': ['em', 'timer', 'replaces', 'path', 'resource-priority'],
              'sip.to.tag': '1c342958875',
              'sip.to.uri.host': '10.33.6.101',
              'sip.to.uri.original': 'sip:201@10.33.6.101;user=phone',
              'sip.to.uri.scheme': 'sip',
              'sip.to.uri.username': '201',
              'sip.type': 'request',
              'sip.uri.host': '10.33.6.101',
              'sip.uri.original': 'sip:201@10.33.6.101:5060;transport=tcp',
              'sip.uri.port': 5060,
              'sip.uri.scheme': 'sip',
              'sip.uri.username': '201',
              'sip.user_agent.original': 'IPP/v.6.20A.027.012',
              'sip.version': '2.0',
              'sip.via.original': ['SIP/2.0/TCP 10.33.6.100;branch=z9hG4bKac1600323074;alias'],
              'source.ip': '10.33.6.100',
              'source.port': 64802,
              'status': 'OK',
              'type': 'sip'},
             {'@timestamp': '2011-07-28T12:54:53.057Z',
              'client.ip': '10.33.6.101',
              'client.port': 5060,
              'destination.ip': '10.33.6.100',
              'destination.port': 64802,
              'event.action': 'sip-bye',
              'event.category': ['network'],
              'event.dataset': 'sip',
              'event.duration': 0,
              'event.end': '2011-07-28T12:54:53.057Z',
              'event.kind': 'event',
              'event.original': 'BYE sip:101@10.33.6.100:5060;transport=tcp SIP/2.0\r\n'
                                'Via: SIP/2.0/TCP 10.33.6.101;branch=z9hG4bKac359152811;alias\r\n'
                                'Max-Forwards: 70\r\n'
                                'From: <sip:201@10.33.6.101;user=phone>;tag=1c342958875\r\n'
                                'To: <sip:101@10.33.6.100>;tag=1c1589367133\r\n'
                                'Call-ID: 158936656982201062716@10.33.6.100\r\n'
                                'CSeq: 1 BYE\r\n'
                                'Supported: '
                                'em,timer,replaces,path,early-session,resource-priority\r\n'
                                'Allow: '
                                'REGISTER,OPTIONS,INVITE,ACK,CANCEL,BYE,NOTIFY,PRACK,REFER,INFO,SUBSCRIBE,UPDATE\r\n'
                                'User-Agent: GW/v.6.20A.027.012\r\n'
                                'Reason: Q.850 ;cause=16 ;text="local"\r\n'
                                'Content-Length: 0\r\n'
                                '\r\n',
              'event.sequence': 1,
              'event.start': '2011-07-28T12:54:53.057Z',
              'event.type': ['info', 'protocol'],
              'network.application': 'sip',
              'network.community_id': '1:nWlU53kb2GqnNe1VDWV69Wz6OJc=',
              'network.direction': 'unknown',
              'network.iana_number': '17',
              'network.protocol': 'sip',
              'network.transport': 'tcp',
              'network.type': 'ipv4',
              'related.hosts': ['10.33.6.100', '10.33.6.101'],
              'related.ip': ['10.33.6.101', '10.33.6.100'],
              'related.user': ['101', '201'],
              'server.ip': '10.33.6.100',
              'server.port': 64802,
              'sip.allow': ['register',
                            'options',
                            'invite',
                            'ack',
                            'cancel',
                            'bye',
                            'notify',
                            'prack',
                            'refer',
                            'info',
                            'subscribe',
                            'update'],
              'sip.call_id': '158936656982201062716@10.33.6.100',
              'sip.cseq.code': 1,
              'sip.cseq.method': 'BYE',
              'sip.from.tag': '1c342958875',
              'sip.from.uri.host': '10.33.6.101',
              'sip.from.uri.original': 'sip:201@10.33.6.101;user=phone',
              'sip.from.uri.scheme': 'sip',
              'sip.from.uri.username': '201',
              'sip.max_forwards': 70,
              'sip.method': 'BYE',
              'sip.supported': ['em',
                                'timer',
                                'replaces',
                                'path',
                                'early-session',
                                'resource-priority'],
              'sip.to.tag': '1c1589367133',
              'sip.to.uri.host': '10.33.6.100',
              'sip.to.uri.original': 'sip:101@10.33.6.100',
              'sip.to.uri.scheme': 'sip',
              'sip.to.uri.username': '101',
              'sip.type': 'request',
              'sip.uri.host': '10.33.6.100',
              'sip.uri.original': 'sip:101@10.33.6.100:5060;transport=tcp',
              'sip.uri.port': 5060,
              'sip.uri.scheme': 'sip',
              'sip.uri.username': '101',
              'sip.user_agent.original': 'GW/v.6.20A.027.012',
              'sip.version': '2.0',
              'sip.via.original': ['SIP/2.0/TCP 10.33.6.101;branch=z9hG4bKac359152811;alias'],
              'source.ip': '10.33.6.101',
              'source.port': 5060,
              'status': 'OK',
              'type': 'sip'},
             {'@timestamp': '2011-07-28T12:54:53.088Z',
              'client.ip': '10.33.6.100',
              'client.port': 64802,
              'destination.ip': '10.33.6.101',
              'destination.port': 5060,
              'event.action': 'sip-bye',
              'event.category': ['network'],
              'event.dataset': 'sip',
              'event.duration': 0,
              'event.end': '2011-07-28T12:54:53.088Z',
              'event.kind': 'event',
              'event.original': 'SIP/2.0 200 OK\r\n'
                                'Via: SIP/2.0/TCP 10.33.6.101;branch=z9hG4bKac359152811;alias\r\n'
                                'From: <sip:201@10.33.6.101;user=phone>;tag=1c342958875\r\n'
                                'To: <sip:101@10.33.6.100>;tag=1c1589367133\r\n'
                                'Call-ID: 158936656982201062716@10.33.6.100\r\n'
                                'CSeq: 1 BYE\r\n'
                                'Contact: <sip:101@10.33.6.100:5060;transport=tcp>\r\n'
                                'Supported: em,timer,replaces,path,resource-priority\r\n'
                                'Allow: '
                                'REGISTER,OPTIONS,INVITE,ACK,CANCEL,BYE,NOTIFY,PRACK,REFER,INFO,SUBSCRIBE,UPDATE\r\n'
                                'Server: IPP/v.6.20A.027.012\r\n'
                                'Content-Length: 0\r\n'
                                '\r\n',
              'event.outcome': 'success',
              'event.reason': 'OK',
              'event.sequence': 1,
              'event.start': '2011-07-28T12:54:53.088Z',
              'event.type': ['info', 'protocol'],
              'network.application': 'sip',
              'network.community_id': '1:nWlU53kb2GqnNe1VDWV69Wz6OJc=',
              'network.direction': 'unknown',
              'network.iana_number': '17',
              'network.protocol': 'sip',
              'network.transport': 'tcp',
              'network.type': 'ipv4',
              'related.hosts': ['10.33.6.101', '10.33.6.100'],
              'related.ip': ['10.33.6.100', '10.33.6.101'],
              'related.user': ['201', '101'],
              'server.ip': '10.33.6.101',
              'server.port': 5060,
              'sip.allow': ['register',
                            'options',
                            'invite',
                            'ack',
                            'cancel',
                            'bye',
                            'notify',
                            'prack',
                            'refer',
                            'info',
                            'subscribe',
                            'update'],
              'sip.call_id': '158936656982201062716@10.33.6.100',
              'sip.code': 200,
              'sip.contact.uri.host': '10.33.6.100',
              'sip.contact.uri.original': 'sip:101@10.33.6.100',
              'sip.contact.uri.scheme': 'sip',
              'sip.contact.uri.username': '101',
              'sip.cseq.code': 1,
              'sip.cseq.method': 'BYE',
              'sip.from.tag': '1c342958875',
              'sip.from.uri.host': '10.33.6.101',
              'sip.from.uri.original': 'sip:201@10.33.6.101;user=phone',
              'sip.from.uri.scheme': 'sip',
              'sip.from.uri.username': '201',
              'sip.status': 'OK',
              'sip.supported': ['em', 'timer', 'replaces', 'path', 'resource-priority'],
              'sip.to.tag': '1c1589367133',
              'sip.to.uri.host': '10.33.6.100',
              'sip.to.uri.original': 'sip:101@10.33.6.100',
              'sip.to.uri.scheme': 'sip',
              'sip.to.uri.username': '101',
              'sip.type': 'response',
              'sip.version': '2.0',
              'sip.via.original': ['SIP/2.0/TCP 10.33.6.101;branch=z9hG4bKac359152811;alias'],
              'source.ip': '10.33.6.100',
              'source.port': 64802,
              'status': 'OK',
              'type': 'sip'}]}
