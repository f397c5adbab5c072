module github.com/signalbridge/signalbridge/services/webhook-receiver

go 1.26.0

require github.com/signalbridge/signalbridge/libs v0.0.0

replace github.com/signalbridge/signalbridge/libs => ../../libs
