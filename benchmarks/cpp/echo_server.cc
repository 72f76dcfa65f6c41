// EchoService (protos/creatormesh/testing/v1/echo.proto) on gRPC's C++ synchronous server: what one RPC costs
// a compiled server, for benchmarks/serving_budget.py. Usage: echo_server PORT
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "creatormesh/testing/v1/echo.grpc.pb.h"

namespace echo = creatormesh::testing::v1;

class EchoImpl final : public echo::EchoService::Service {
  grpc::Status Echo(grpc::ServerContext*, const echo::EchoRequest* request, echo::EchoResponse* response) override {
    response->set_message(request->message());
    response->set_payload(request->payload());
    return grpc::Status::OK;
  }
};

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: echo_server PORT" << std::endl;
    return 2;
  }
  const std::string address = std::string("127.0.0.1:") + argv[1];
  grpc::EnableDefaultHealthCheckService(true);
  EchoImpl service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::cerr << "could not listen on " << address << std::endl;
    return 1;
  }
  std::cout << "listening on " << address << std::endl;
  server->Wait();
  return 0;
}
