from fastapi import APIRouter

providers_router = APIRouter(prefix="/providers", tags=["providers"])
services_router = APIRouter(prefix="/services", tags=["services"])
